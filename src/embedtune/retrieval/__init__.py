"""The retrieval core below the stages: encoders, the embedding cache, exact dense and
max-passage search, BM25, fusion, trec_eval metrics and significance statistics.

Every stage that searches or scores (pairs, train, evaluate, export, index, and later serve
and monitor) uses these; none of them is a stage. Modules load their heavy dependencies
(bm25s, onnxruntime, scipy) only when used.

- :mod:`embedtune.retrieval.encoder`: the ``Encoder`` protocol (a sentence-transformers model
  or the torch-free :class:`~embedtune.retrieval.onnx.OnnxEncoder`);
- :mod:`embedtune.retrieval.dense`: ``DenseEncoder`` (prompts, batching, the on-disk cache of
  document embeddings) and chunked exact search with max-passage scoring;
- :mod:`embedtune.retrieval.bm25`, :mod:`~embedtune.retrieval.fusion`,
  :mod:`~embedtune.retrieval.metrics`, :mod:`~embedtune.retrieval.ranking`,
  :mod:`~embedtune.retrieval.stats`, :mod:`~embedtune.retrieval.cache`.
"""
