"""Transcribes WAV files with faster-whisper, for comparison with Hark.

    run_faster_whisper.py MODEL_DIR COMPUTE_TYPE FILE.wav...

MODEL_DIR is a CTranslate2 Whisper model as Hark reads it (model.bin, config.json,
tokenizer.json). CTranslate2 also wants vocabulary.json, the token list, which this writes
from tokenizer.json into a sibling directory of links. Decoding matches Hark's: greedy
(beam_size=1), English, word timestamps, two CPU threads. Prints one JSON line per file:
its path, the seconds transcription took (model loaded and warmed up before) and the text.
"""

import json
import os
import sys
import time

from faster_whisper import WhisperModel


def with_vocabulary(model_dir):
    """A directory with the model's files linked and vocabulary.json written."""
    out = os.path.join(os.path.dirname(os.path.abspath(model_dir)), "bench-ct2-model")
    os.makedirs(out, exist_ok=True)
    for name in ("model.bin", "config.json", "tokenizer.json"):
        link = os.path.join(out, name)
        if not os.path.exists(link):
            os.symlink(os.path.abspath(os.path.join(model_dir, name)), link)
    with open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8") as f:
        tokenizer = json.load(f)
    ids = dict(tokenizer["model"]["vocab"])
    ids.update({t["content"]: t["id"] for t in tokenizer["added_tokens"]})
    tokens = [None] * (max(ids.values()) + 1)
    for token, i in ids.items():
        tokens[i] = token
    # The 1501 timestamp tokens follow the vocabulary.
    tokens += ["<|%.2f|>" % (i * 0.02) for i in range(1501)]
    with open(os.path.join(out, "vocabulary.json"), "w", encoding="utf-8") as f:
        json.dump(tokens, f)
    return out


def main():
    model_dir, compute_type, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    model = WhisperModel(
        with_vocabulary(model_dir), device="cpu", compute_type=compute_type, cpu_threads=2
    )

    def transcribe(path):
        segments, _ = model.transcribe(
            path, language="en", beam_size=1, word_timestamps=True
        )
        return " ".join(s.text.strip() for s in segments)

    transcribe(files[0])  # warm-up
    for path in files:
        start = time.perf_counter()
        text = transcribe(path)
        seconds = time.perf_counter() - start
        print(json.dumps({"file": path, "seconds": seconds, "text": text}), flush=True)


if __name__ == "__main__":
    main()
