"""A second implementation of RFC 9162's Merkle tree, written from the RFC's definitions (section 2.1) with
nothing but hashlib, for tests/crosscheck.rs to compare the Rust crate with.

Input (stdin): the line "leaves", one hex-encoded leaf per line, the line "queries", then one query per line:
    root N       MTH(D[0:N])
    incl I N     PATH(I, D[0:N])
    cons M N     PROOF(M, D[0:N])
Output (stdout): one line per query, the hex hashes separated by commas (empty for an empty proof).
"""

import functools
import hashlib
import sys


def split(n):
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def main():
    lines = sys.stdin.read().split("\n")
    assert lines[0] == "leaves", lines[0]
    end = lines.index("queries")
    leaves = [bytes.fromhex(line) for line in lines[1:end]]

    @functools.lru_cache(maxsize=None)
    def mth(start, stop):
        n = stop - start
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return hashlib.sha256(b"\x00" + leaves[start]).digest()
        k = split(n)
        return hashlib.sha256(b"\x01" + mth(start, start + k) + mth(start + k, stop)).digest()

    def path(m, start, stop):
        n = stop - start
        if n == 1:
            return []
        k = split(n)
        if m < k:
            return path(m, start, start + k) + [mth(start + k, stop)]
        return path(m - k, start + k, stop) + [mth(start, start + k)]

    def subproof(m, start, stop, b):
        n = stop - start
        if m == n:
            return [] if b else [mth(start, stop)]
        k = split(n)
        if m <= k:
            return subproof(m, start, start + k, b) + [mth(start + k, stop)]
        return subproof(m - k, start + k, stop, False) + [mth(start, start + k)]

    out = []
    for line in lines[end + 1:]:
        if not line:
            continue
        words = line.split()
        if words[0] == "root":
            hashes = [mth(0, int(words[1]))]
        elif words[0] == "incl":
            hashes = path(int(words[1]), 0, int(words[2]))
        elif words[0] == "cons":
            m, n = int(words[1]), int(words[2])
            hashes = subproof(m, 0, n, True) if 0 < m < n else []
        else:
            raise ValueError(line)
        out.append(",".join(h.hex() for h in hashes))
    sys.stdout.write("\n".join(out) + "\n")


main()
