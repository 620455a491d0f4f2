"""Privacy by construction: synthetic identifiers and the watermark.

BSN: 9 digits, elfproef-valid, drawn from 900000000-999999999. Real BSNs are issued from lower numbers today; nothing
reserves the 9-prefix formally (RvIG publishes a list of test BSNs, not a reserved range), so every artefact also carries the synthetic watermark and the
guard refuses unmarked data. A person's BSN is a keyed bijection of its global person index: two partitions never
give two persons the same BSN, and the same person gets the same BSN in any run with the same seed.

Every other identifier a message carries (client_id, ToewijzingNummer, ReferentieAanbieder, ReferentieNummer,
DeclaratieNummer) is an opaque number: a keyed bijection (`opaque_number`) of a stable internal key, so it is unique
wherever that key is, fixed-width, and says nothing about order, version, debet/credit or outcome. Records that fault
injection adds draw theirs uniformly from the same range (`fresh_numbers`), which is the distribution the bijection
gives the clean ones. See docs/privacy.md for the trade-offs.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl

BSN_RANGE = (900_000_000, 999_999_999)
AGB_AANBIEDER_PREFIX = "98"   # aanbieders: 98RRKKKK (RR inkoopregio index, KKKK sequence)
AGB_VERWIJZER_PREFIX = "97"   # verwijzers: 97GGGKKK (GGG gemeente index, KKK sequence)
WATERMARK_KEY = b"jeugdzorg_zandbak.synthetic"
# Capacity of the BSN index space: 10**6 prefixes (9 d2..d7) x 9 usable d8 digits.
BSN_CAPACITY = 9_000_000

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix64_inplace(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z += np.uint64(0x9E3779B97F4A7C15)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised: a counter-based hash for per-row randomness that needs no shared state."""
    return _mix64_inplace(np.array(x, dtype=np.uint64, ndmin=1) if np.ndim(x) == 0 else np.asarray(x).astype(np.uint64))


@lru_cache(maxsize=1 << 14)
def _hash_prefix(seed: int, *parts: int) -> np.ndarray:
    """keyed_hash of a seed and leading integer parts (one element): the same few prefixes recur on every call."""
    with np.errstate(over="ignore"):
        h = mix64(np.asarray([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
        if seed >> 64:          # 128-bit seeds of sealed data; smaller seeds hash exactly as before
            h = mix64(h ^ np.uint64((seed >> 64) & 0xFFFFFFFFFFFFFFFF))
        for p in parts:
            h = mix64(h ^ (np.asarray(p).astype(np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
    h.flags.writeable = False   # shared by every caller
    return h


def keyed_hash(seed: int, *parts) -> np.ndarray:
    """Hash of (seed, part1, part2, ...) where parts are ints or integer arrays (broadcast)."""
    lead = 0   # leading integer parts: their prefix hash is cached
    while lead < len(parts) and isinstance(parts[lead], (int, np.integer)):
        lead += 1
    h = _hash_prefix(int(seed), *(int(p) for p in parts[:lead]))
    if lead == len(parts):
        return h.copy()
    arrays = [np.asarray(p) for p in parts[lead:]]
    shape = np.broadcast_shapes(h.shape, *(a.shape for a in arrays))
    if len(shape) != 1 or shape[0] <= _BLOCK:
        return _hash_parts(h, arrays)
    out = np.empty(shape, dtype=np.uint64)
    arrays = [np.broadcast_to(a, shape) for a in arrays]
    for lo in range(0, shape[0], _BLOCK):
        out[lo:lo + _BLOCK] = _hash_parts(h, [a[lo:lo + _BLOCK] for a in arrays])
    return out


# Rows hashed at a time: the dozens of passes over a block stay in the CPU cache (3-5x faster than whole columns
# of millions of rows, same values).
_BLOCK = 1 << 15


def _hash_parts(h: np.ndarray, arrays: list[np.ndarray]) -> np.ndarray:
    with np.errstate(over="ignore"):
        for p in arrays:
            part = p.astype(np.int64, copy=False).astype(np.uint64)
            part *= np.uint64(0x9E3779B97F4A7C15)
            h = _mix64_inplace(part ^ h)
    return h


def keyed_uniform(seed: int, *parts) -> np.ndarray:
    """Uniform [0, 1) floats from keyed_hash (53 bits)."""
    return (keyed_hash(seed, *parts) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _feistel24(x: np.ndarray, key: int) -> np.ndarray:
    """Keyed permutation of [0, 2**24): four Feistel rounds on 12-bit halves."""
    left, right = (x >> 12) & 0xFFF, x & 0xFFF
    for rnd in range(4):
        f = (keyed_hash(key, rnd, right) & np.uint64(0xFFF)).astype(np.int64)
        left, right = right, left ^ f
    return (left << 12) | right


def permute_index(idx: np.ndarray, key: int, size: int) -> np.ndarray:
    """Keyed bijection of [0, size) onto itself (size <= 2**24) by cycle walking the Feistel permutation."""
    out = _feistel24(np.asarray(idx, dtype=np.int64), key)
    todo = np.flatnonzero(out >= size)
    while todo.size:        # on the pending rows only
        again = _feistel24(out[todo], key)
        out[todo] = again
        todo = todo[again >= size]
    return out


# ------------------------------------------------------------------------------------------- opaque identifiers

# Formats: (prefix, digits). Fixed width, so length or prefix never tells two records apart. Widths fit the XSD types:
# LDT_Referentie <= 36 characters, LDT_ReferentieNummer <= 20, LDT_IdentificatieDeclaratie <= 12 alphanumeric,
# LDT_Nummer <= 999999999 (the ToewijzingNummer gets 8 digits, from 10000000).
CLIENT_ID = ("C", 9)
TOEWIJZING_NUMMER_RANGE = (10_000_000, 100_000_000)
REFERENTIE_AANBIEDER = ("", 16)
REFERENTIE_NUMMER = ("", 15)
DECLARATIE_NUMMER = ("", 10)
# Domain tags: one permutation per kind of identifier.
D_CLIENT, D_TOEWIJZING, D_VERZOEK, D_PRESTATIE, D_DECLARATIE = 201, 202, 203, 204, 205

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _feistel(x: np.ndarray, tweak: np.ndarray, half: int) -> np.ndarray:
    """Keyed permutation of [0, 2**(2*half)) (uint64): four Feistel rounds, the key per row in `tweak`."""
    mask = np.uint64((1 << half) - 1)
    h = np.uint64(half)
    left, right = x >> h, x & mask
    with np.errstate(over="ignore"):
        for rnd in range(4):
            f = _mix64_inplace(right * _GOLDEN + np.uint64(rnd))   # fresh temporaries: hashed in place
            f ^= tweak
            f = _mix64_inplace(f)
            f &= mask
            f ^= left
            left, right = right, f
    return (left << h) | right


def opaque_number(seed: int, domain: int, index, *scope, size: int) -> np.ndarray:
    """Keyed bijection of `index` in [0, size) onto [0, size) (size <= 10**18), one permutation per
    (seed, domain, *scope); scope parts are ints or integer arrays broadcast with `index`.

    Distinct indices give distinct numbers within one scope, and the numbers look uniform on [0, size): neither
    their order nor any digit tells anything about the index without the seed."""
    idx = np.asarray(index, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueError(f"identifier key outside [0, {size}) for domain {domain}")
    bits = max(2, int(size - 1).bit_length())
    half = (bits + 1) // 2
    tweak = np.broadcast_to(keyed_hash(seed, domain, *scope), idx.shape).ravel()
    out = _feistel_blocked(idx.ravel().astype(np.uint64), tweak, half)
    todo = np.flatnonzero(out >= np.uint64(size))
    while todo.size:        # cycle walking: apply again until the value lies in range (a bijection of [0, size))
        again = _feistel_blocked(out[todo], tweak[todo], half)
        out[todo] = again
        todo = todo[again >= np.uint64(size)]
    return out.astype(np.int64).reshape(idx.shape)


def _feistel_blocked(x: np.ndarray, tweak: np.ndarray, half: int) -> np.ndarray:
    """_feistel block by block, in cache (see _BLOCK)."""
    if len(x) <= _BLOCK:
        return _feistel(x, tweak, half)
    out = np.empty_like(x)
    for lo in range(0, len(x), _BLOCK):
        out[lo:lo + _BLOCK] = _feistel(x[lo:lo + _BLOCK], tweak[lo:lo + _BLOCK], half)
    return out


def opaque_code(numbers, fmt: tuple[str, int]) -> pl.Series:
    """Numbers in [0, 10**digits) as fixed-width strings prefix + zero-padded digits."""
    prefix, digits = fmt
    code = pl.Series(np.asarray(numbers, dtype=np.int64)).cast(pl.String).str.zfill(digits)
    return prefix + code if prefix else code   # "" + code would copy every string once more


def fresh_numbers(rng: np.random.Generator, k: int, low: int, high: int, taken=()) -> list[int]:
    """k distinct numbers drawn uniformly from [low, high) outside `taken`: ids for records that fault injection
    adds, from the distribution the keyed bijection gives clean ones, without colliding with them."""
    taken = set(taken)
    out: list[int] = []
    while len(out) < k:
        for v in rng.integers(low, high, k - len(out)).tolist():
            if v not in taken:
                taken.add(v)
                out.append(v)
    return out


def _weights_sum(prefix: np.ndarray) -> np.ndarray:
    """9*d1 + 8*d2 + ... + 3*d7 for the 7-digit prefixes (d1 = 9)."""
    s = np.zeros_like(prefix)
    p = prefix.copy()
    for w in range(3, 10):          # digit d7 has weight 3, d1 weight 9
        s += (p % 10) * w
        p //= 10
    return s


def bsn_from_index(index: np.ndarray, seed: int) -> np.ndarray:
    """Global person index -> synthetic BSN (int64), elfproef-valid, unique per index for a given seed."""
    index = np.asarray(index, dtype=np.int64)
    if index.size and (index.min() < 0 or index.max() >= BSN_CAPACITY):
        raise ValueError("person index outside the synthetic BSN capacity")
    k = permute_index(index, key=seed ^ 0x5A17, size=BSN_CAPACITY)
    prefix = 9_000_000 + k // 9          # d1..d7, d1 = 9
    j = k % 9                             # which of the usable d8 digits
    w = _weights_sum(prefix) % 11
    # d8 with check digit 10 is the one digit that cannot make a valid BSN; skip it.
    bad = ((10 - w) * 6) % 11            # 6 is the inverse of 2 mod 11
    d8 = np.where(j >= bad, j + 1, j)
    d9 = (w + 2 * d8) % 11
    return prefix * 100 + d8 * 10 + d9


def elfproef_valid(bsn: pl.Expr) -> pl.Expr:
    """Polars expression: True where a string BSN has 9 digits and passes the elfproef (CS002)."""
    digits = [bsn.str.slice(i, 1).cast(pl.Int64, strict=False) for i in range(9)]
    s = sum(d * w for d, w in zip(digits[:8], range(9, 1, -1))) - digits[8]
    return (bsn.str.contains(r"^\d{9}$").fill_null(False) & (s % 11 == 0) & (s > 0)).fill_null(False)


def elfproef_valid_np(bsn: np.ndarray) -> np.ndarray:
    """Same check on integer BSNs."""
    b = np.asarray(bsn, dtype=np.int64)
    s = -(b % 10)
    b = b // 10
    for w in range(2, 10):
        s += (b % 10) * w
        b //= 10
    return (s % 11 == 0) & (s > 0)


# Postcode letters: real Dutch postcodes do not use F, I, O, Q, U, Y, nor the combinations SA, SD, SS.
_LETTERS = [c for c in "ABCDEGHJKLMNPRSTVWXZ"]
POSTCODE_LETTER_PAIRS = [a + b for a in _LETTERS for b in _LETTERS if a + b not in {"SA", "SD", "SS"}]
POSTCODE_PATTERN = r"^[1-9][0-9]{3}(?!SA|SD|SS)[A-Z]{2}$"
