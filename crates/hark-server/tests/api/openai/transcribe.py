"""Transcribes a file through Hark with OpenAI's official client, as a user of it would.

Usage: transcribe.py BASE_URL TOKEN AUDIO_FILE. Prints one JSON object per line: the plain
transcription, the verbose one with word and segment timestamps, and the SubRip one.
"""
import json
import sys

from openai import OpenAI

base, token, path = sys.argv[1:4]
client = OpenAI(base_url=f"{base}/v1", api_key=token, max_retries=0)

with open(path, "rb") as audio:
    plain = client.audio.transcriptions.create(model="whisper-1", file=audio)
print(json.dumps({"text": plain.text}))

with open(path, "rb") as audio:
    verbose = client.audio.transcriptions.create(
        model="whisper-1",
        file=audio,
        language="en",
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
print(json.dumps({
    "language": verbose.language,
    "duration": verbose.duration,
    "text": verbose.text,
    "segments": [[s.start, s.end, s.text] for s in verbose.segments],
    "words": [[w.word, w.start, w.end] for w in verbose.words],
}))

with open(path, "rb") as audio:
    srt = client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="srt")
print(json.dumps({"srt": srt}))

try:
    with open(path, "rb") as audio:
        client.audio.transcriptions.create(model="whisper-1", file=audio, language="fr")
    print(json.dumps({"refused": None}))
except Exception as error:
    print(json.dumps({"refused": getattr(error, "status_code", None)}))
