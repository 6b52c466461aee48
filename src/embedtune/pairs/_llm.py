"""Optional question writer: an OpenAI-compatible chat-completions endpoint, called with the
standard library only, its answers cached on disk so a rerun makes no request."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from embedtune.corpus.types import Document
from embedtune.errors import ConfigError, EmbedtuneError
from embedtune.io import write_json
from embedtune.pairs.config import LLMConfig

logger = logging.getLogger(__name__)

PROMPT = (
    "Write {n} different questions that a person could type into a search engine and that "
    "the document below answers. Use your own words rather than copying sentences. Write one "
    "question per line, with no numbering and nothing else.\n\nDocument:\n{document}"
)
_BULLET = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


class LLMError(EmbedtuneError):
    """The question-writing endpoint failed or answered something unreadable."""


def endpoint(url: str) -> str:
    """The chat-completions URL: a base URL (``…/v1``) gets ``/chat/completions`` appended."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


class QuestionWriter:
    """Asks the endpoint for questions about one document at a time, through a disk cache
    keyed by model, prompt and document hash."""

    def __init__(self, config: LLMConfig, cache_dir: Path) -> None:
        self.config = config
        self.url = endpoint(config.url)
        self.cache_dir = cache_dir
        self.requests = 0
        self.cached = 0
        self._key: str | None = None
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise ConfigError(
                    f"weak.llm.api_key_env names ${config.api_key_env}, which is not set"
                )
            self._key = key

    def _prompt(self, doc: Document) -> str:
        text = doc.full_text[: self.config.max_doc_chars]
        return PROMPT.format(n=self.config.questions_per_doc, document=text)

    def _cache_path(self, prompt: str) -> Path:
        # the prompt embeds the document (and the question count), so its hash covers both
        key = f"{self.config.model}\0{hashlib.sha256(prompt.encode()).hexdigest()}"
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def questions(self, doc: Document) -> list[str]:
        """Up to ``questions_per_doc`` distinct questions about ``doc``."""
        prompt = self._prompt(doc)
        path = self._cache_path(prompt)
        if path.is_file():
            self.cached += 1
            return list(json.loads(path.read_text(encoding="utf-8"))["questions"])
        content = self._complete(prompt)
        found = [_BULLET.sub("", line).strip() for line in content.splitlines()]
        questions = list(dict.fromkeys(q for q in found if len(q.split()) >= 2))
        questions = questions[: self.config.questions_per_doc]
        write_json(path, {"model": self.config.model, "questions": questions})
        return questions

    def _complete(self, prompt: str) -> str:
        body = {
            "model": self.config.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,  # reproducible wording where the server honours it
        }
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                answer: Any = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:200]
            raise LLMError(f"LLM endpoint {self.url} answered HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise LLMError(f"LLM endpoint {self.url} could not be reached: {exc}") from exc
        except ValueError as exc:
            raise LLMError(f"LLM endpoint {self.url} answered with invalid JSON") from exc
        try:
            return str(answer["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(
                f"LLM endpoint {self.url} answered without choices[0].message.content"
            ) from exc
