#!/usr/bin/env python3
"""Independent GPT-2 byte-level BPE encoder that writes golora's tokenizer parity cases.

models/gpt/testdata/bpe_cases.json is a list of {"text": ..., "ids": [...]} pairs:
GPT-2's token ids for ~50 awkward texts, computed here by a plain-Python
implementation of GPT-2's algorithm (not tiktoken, not transformers).
TestGPT2Parity in models/gpt checks the Go tokenizer against them. The JSON file
is committed, so neither CI nor `go test` needs Python.

Regenerate (from the repository root; needs python3 and the `regex` module,
Debian package python3-regex, for \\p{L} and \\p{N}):

    ranks="$(mktemp -d)/r50k_base.ranks"
    GOLORA_EXPORT_RANKS="$ranks" go test ./models/gpt -run '^TestExportRanks$' -count=1
    python3 tools/bpe_reference.py "$ranks"

The first step writes the r50k_base rank table (one "<base64 token bytes> <id>"
line per token, tiktoken's file format) from the vocabulary the Go tokenizer
embeds. The table is GPT-2's vocabulary, not ours, and 0.5 MB, so it is not
committed. The second step writes the JSON file (atomically); pass --out FILE
to write elsewhere.

What is independent of the Go side: everything but the vocabulary itself.
The Go tokenizer (tiktoken-go) merges by the rank of the *concatenated token*
and splits text with regexp2; this script does what OpenAI's GPT-2 encoder
does:

1. Split the text on the literal "<|endoftext|>" (id 50256), as Hugging Face's
   GPT-2 tokenizers do, and encode the pieces in between on their own.
2. Pre-tokenize each piece with GPT-2's pattern
   's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
3. Map each pre-token's UTF-8 bytes to printable characters with GPT-2's
   byte-to-unicode table.
4. Apply the *pair merges* in rank order: repeatedly find the adjacent pair with
   the lowest merge rank and merge every occurrence of it, left to right.
5. Look up each resulting symbol string in the vocabulary.

GPT-2 ships its merges as vocab.bpe; the rank table holds only tokens. Token
256 + r is the product of merge r, so merge r is recovered by running step 4 on
that token's own characters with merges 0..r-1 only: the result must be
exactly two symbols, the pair of merge r (the script stops if it is not).
Known GPT-2 ids ("Hello world" -> [15496, 995]) are checked before writing.
"""

import argparse
import base64
import json
import os
import sys
import tempfile

import regex

EOT_TEXT = "<|endoftext|>"
EOT_ID = 50256
N_TOKENS = 50256  # BPE tokens 0..50255; 50256 is <|endoftext|>

# GPT-2's pre-tokenizer: contractions, letters, digits, other symbols (each
# optionally after one space), then whitespace not followed by a non-space.
PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


def byte_to_unicode():
    """GPT-2's reversible byte -> character table.

    The 188 bytes that are printable Latin-1 characters ('!'..'~', U+00A1..U+00AC,
    U+00AE..U+00FF) stand for themselves; the other 68 bytes, in increasing
    order, get U+0100, U+0101, ... so no symbol is whitespace or a control
    character. For example the space byte 0x20 becomes U+0120 'Ġ'.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(0xA1, 0xAC + 1))
        + list(range(0xAE, 0xFF + 1))
    )
    table = {}
    extra = 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_TO_UNICODE = byte_to_unicode()


def to_symbols(data):
    """UTF-8 bytes -> GPT-2's printable string for them."""
    return "".join(BYTE_TO_UNICODE[b] for b in data)


def load_ranks(path):
    """Read a tiktoken-format rank file into {printable token string: id}."""
    encoder = {}
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                token_b64, rank = line.split()
                token = base64.b64decode(token_b64, validate=True)
                rank = int(rank)
            except ValueError as e:
                sys.exit(f"bpe_reference: {path}:{lineno}: bad line: {e}")
            encoder[to_symbols(token)] = rank
    ids = sorted(encoder.values())
    if ids != list(range(N_TOKENS)):
        sys.exit(f"bpe_reference: {path}: want ids 0..{N_TOKENS - 1} once each, got {len(ids)} ids")
    singles = sorted(s for s, i in encoder.items() if i < 256)
    if singles != sorted(BYTE_TO_UNICODE.values()):
        sys.exit(f"bpe_reference: {path}: ids 0..255 are not the 256 single bytes")
    return encoder


def bpe(symbols, merge_ranks):
    """GPT-2's merge loop on a tuple of symbols.

    While some adjacent pair has a merge rank, take the pair with the lowest
    rank and merge every occurrence of it in one left-to-right pass.
    """
    word = list(symbols)
    while len(word) > 1:
        best = None
        best_rank = None
        for pair in zip(word, word[1:]):
            r = merge_ranks.get(pair)
            if r is not None and (best_rank is None or r < best_rank):
                best, best_rank = pair, r
        if best is None:
            break
        first, second = best
        merged = []
        i = 0
        while i < len(word):
            if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return word


def recover_merges(encoder):
    """Recover GPT-2's merge list (pair -> rank) from the token ranks."""
    by_id = {i: s for s, i in encoder.items()}
    merge_ranks = {}
    for token_id in range(256, N_TOKENS):
        token = by_id[token_id]
        parts = bpe(token, merge_ranks)
        if len(parts) != 2:
            sys.exit(
                f"bpe_reference: token {token_id} {token!r} reduces to {parts!r} with the "
                "earlier merges, not to one pair"
            )
        merge_ranks[(parts[0], parts[1])] = token_id - 256
    return merge_ranks


class Encoder:
    """GPT-2's encoder: pre-tokenize, map bytes, merge, look up."""

    def __init__(self, encoder, merge_ranks):
        self.encoder = encoder
        self.merge_ranks = merge_ranks
        self.cache = {}

    def encode_piece(self, text):
        ids = []
        for pre in PATTERN.findall(text):
            symbols = to_symbols(pre.encode("utf-8"))
            if symbols not in self.cache:
                self.cache[symbols] = [self.encoder[s] for s in bpe(symbols, self.merge_ranks)]
            ids.extend(self.cache[symbols])
        return ids

    def encode(self, text):
        ids = []
        for i, piece in enumerate(text.split(EOT_TEXT)):
            if i > 0:
                ids.append(EOT_ID)
            ids.extend(self.encode_piece(piece))
        return ids


# The parity texts. Long runs (over 96 bytes) take tiktoken-go's heap merge
# path; shorter ones its linear scan.
TEXTS = [
    "",
    "Hello world",
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "   leading spaces",
    "trailing spaces   ",
    " a  b   c    d     e      f",
    " ",
    "  \n",
    "line one\nline two\n\nline four\n",
    "\n\n\n\n",
    "tabs\tand\t\ttabs\t",
    "windows\r\nline\r\nendings\r\n\r\n",
    "   \t \n  mixed \u000b\u000c whitespace   \n ",
    "1234567890 3.14159 1,000,000 2024-01-01 007",
    "98765432109876543210123456789098765432101234567890",
    "It's what they're saying: we've, I'm, you'll, he'd, isn't.",
    "IT'S LOUD, THEY'RE HERE, WE'VE GONE",
    "rock 'n' roll, 'quoted', O'Neil's car, 's'll'd're've'm't",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 Z\u00fcrich fa\u00e7ade \u00c5ngstr\u00f6m",
    "cafe\u0301 (decomposed accent) n\u0303",
    "I \u2764\ufe0f Go \U0001f389\U0001f680 \U0001f600\U0001f600\U0001f600",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family, "
    "\U0001f468\U0001f3fd\u200d\U0001f4bb coder, \U0001f3f3\ufe0f\u200d\U0001f308 flag",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u8fd9\u662f\u4e00\u4e2a\u6d4b\u8bd5\u3002",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3068\u30ab\u30bf\u30ab\u30ca",
    "\uc548\ub155\ud558\uc138\uc694 \uc138\uacc4",
    "Hello \u043c\u0438\u0440 \u0639\u0627\u0644\u0645 \u05e9\u05dc\u05d5\u05dd "
    "\u4e16\u754c \u03ba\u03cc\u03c3\u03bc\u03bf\u03c2!",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e "
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "Arabic-Indic digits \u0663\u0664\u0665 and \u00bd \u2155 \u2460",
    "!!! ??? ... --- *** ((( ))) {}[]<> @#$%^&*",
    "func main() {\n\tfmt.Println(\"hi\")\n}\n",
    "def f(x):\n    if x:\n        return x * 2\n    return None\n",
    "https://example.com/path?q=1&r=2#frag user@example.org",
    "\u2211 x\u00b2 \u2264 \u221e \u2192 \u20ac100 \u00a35 \u00a5",
    "a\u00a0b\u2009c\u3000d\u2028e\u0085f",
    "\u0000\u0001\u007f\u001c\u001f control",
    "DEL: a\u007fb \u007f !!\u007f!! \n \u007f\u0001\u007f\u0001 x  \u007f\t\u007f",
    "antidisestablishmentarianism supercalifragilisticexpialidocious",
    "a" * 120,
    "9" * 130,
    "=" * 100 + " " + "-!" * 60,
    " " * 110 + "x",
    "\n" * 100 + "\t" * 20,
    "\u00e9" * 60 + " \u4e16" * 40,
    "<|endoftext|>",
    "first document<|endoftext|>second document",
    "a <|endoftext|> b <|endoftext|><|endoftext|>c",
    "  <|endoftext|>  ",
    "<|endoftext|\u200b <|endoftext <|endoftext|>>",
    "Mr. Smith's dog (age 3) barked 12,345 times\u2014wow!\n",
    "In 1492, Columbus sailed the ocean blue. \u201cQuoted,\u201d she said; "
    "\u2018single\u2019 too\u2026",
]


def write_atomic(path, data):
    """Write data to path through a temporary file in the same folder."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".bpe_cases.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.normpath(os.path.join(here, "..", "models", "gpt", "testdata", "bpe_cases.json"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ranks", help="r50k_base rank file written by TestExportRanks")
    ap.add_argument("--out", default=default_out, help="JSON file to write")
    args = ap.parse_args()

    encoder = load_ranks(args.ranks)
    enc = Encoder(encoder, recover_merges(encoder))

    # Facts about GPT-2 that do not depend on this script being right.
    known = {"Hello world": [15496, 995], EOT_TEXT: [EOT_ID], " the": [262], "\n\n": [628]}
    for text, want in known.items():
        got = enc.encode(text)
        if got != want:
            sys.exit(f"bpe_reference: {text!r} encodes as {got}, GPT-2 gives {want}")

    lines = []
    for text in TEXTS:
        ids = enc.encode(text)
        line = json.dumps({"text": text, "ids": ids}, ensure_ascii=False)
        # Keep the file readable: escape what a terminal would not show
        # (DEL, zero-width joiners, unusual spaces), leave the rest as UTF-8.
        lines.append("".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in line))
    write_atomic(args.out, "[\n" + ",\n".join(lines) + "\n]\n")
    print(f"bpe_reference: wrote {len(TEXTS)} cases to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
