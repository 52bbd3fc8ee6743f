"""Shared helpers for the corpus generators: deterministic random tokens and MCP payload shapes.

The generators are the source of the corpus; their output (the .jsonl files beside them) is
committed so the corpus test needs no Python. Re-run `python3 tests/corpus/generate.py` after
editing a generator; the output is deterministic.
"""
import base64
import json
import random
import re
import string

RNG = random.Random(20261201)

CHARSETS = {
    "A": string.ascii_letters + string.digits,  # base62
    "h": "0123456789abcdef",
    "H": "0123456789ABCDEF",
    "d": string.digits,
    "U": string.ascii_uppercase + string.digits,
    "l": string.ascii_lowercase,
    "L": string.ascii_letters,
    "a": string.ascii_lowercase + string.digits,
    "b": string.ascii_letters + string.digits + "+/",
    "u": string.ascii_letters + string.digits + "_-",
    "B": "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
    "z": "abcdefghijklmnopqrstuvwxyz234567",
    "g": "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L",
    "f": "abcdefgh0123456789",
}


def rand(charset, n):
    chars = CHARSETS[charset]
    # Keep every generated token visibly random: no long runs of one character.
    while True:
        s = "".join(RNG.choice(chars) for _ in range(n))
        if not re.search(r"(.)\1{5}", s):
            return s


def fill(template):
    """`{A:36}` → 36 base62 characters, `{uuid}` → a UUID; see CHARSETS."""
    def sub(m):
        if m.group(0) == "{uuid}":
            return uuid()
        kind, n = m.group(1), int(m.group(2))
        return rand(kind, n)
    return re.sub(r"\{uuid\}|\{([A-Za-z]):(\d+)\}", sub, template)


def uuid():
    h = rand("h", 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def write(path, cases):
    with open(path, "w") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False, sort_keys=True) + "\n")


def call(tool, arguments):
    """The params of a tools/call request."""
    return {"name": tool, "arguments": arguments}


def result_text(text):
    """A tools/call result with one text block."""
    return {"content": [{"type": "text", "text": text}], "isError": False}
