"""Audio data: 16-bit PCM WAV files and the Free Spoken Digit Dataset (FSDD).

**WAV.** :func:`read_wav` reads a PCM WAV with the standard library's :mod:`wave` module and returns
float32 samples ``x = s / 32768`` in [-1, 1) (s = the 16-bit integers; 8-bit unsigned and 32-bit PCM
are scaled the same way to [-1, 1)); :func:`write_wav` writes mono or multi-channel 16-bit PCM
(``s = round(clip(x, -1, 1) * 32767)``, or int16 samples as they are).

**FSDD** (Free Spoken Digit Dataset, https://github.com/Jakobovski/free-spoken-digit-dataset, tag
``v1.0.9``, commit 26eb9aa; CC BY-SA 4.0): 3,000 mono 16-bit recordings at 8 kHz of the digits 0-9
spoken by 6 speakers, 50 of each digit per speaker, named ``{digit}_{speaker}_{index}.wav``.
Official split: indices 0-4 are the *test* set, 5-49 the *train* set (300 / 2,700 files).

Where :class:`FSDD` reads from, in order:

1. ``root=`` a folder: the WAVs in it, or in its ``recordings/`` or ``fsdd/recordings/`` sub-folder
   (any subset of the files is fine; names that are not ``{digit}_{speaker}_{index}.wav`` are ignored);
2. ``bundled=True``: the 60-file subset shipped in ``minigen/data/files/fsdd`` (speakers theo and
   nicolas, every digit, indices 0 (test) and 5, 6 (train); its README has the attribution);
3. otherwise the cache ``data_root()/fsdd/recordings`` (``$MINIGEN_DATA`` or ``~/.cache/minigen``);
   with ``download=True`` missing files are fetched from the tag's archive on GitHub, every file's
   MD5 checked against the manifest shipped with minigen (all 3,000 files of v1.0.9), and moved into
   place. Offline, the error says what to put where.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import wave
from functools import lru_cache

import numpy as np

from ..argcheck import check_path, check_size
from ..errors import DTypeError, IndexOutOfRangeError, InvalidArgumentError, ShapeError
from .dataset import DataError, Dataset, DatasetNotFoundError
from .mnist import FILES_DIR, data_root

__all__ = ["read_wav", "write_wav", "FSDD", "load_fsdd", "download_fsdd", "fsdd_manifest", "parse_fsdd_name",
           "fsdd_split", "FSDD_VERSION", "FSDD_COMMIT", "FSDD_REPO", "FSDD_ARCHIVE_URLS", "FSDD_RAW_URL",
           "FSDD_SPEAKERS", "FSDD_SAMPLE_RATE", "FSDD_NUM_FILES", "BUNDLED_FSDD_DIR", "bundled_fsdd_sha256"]

FSDD_REPO = "Jakobovski/free-spoken-digit-dataset"
FSDD_VERSION = "v1.0.9"
FSDD_COMMIT = "26eb9aa"
FSDD_ARCHIVE_URLS = (
    f"https://github.com/{FSDD_REPO}/archive/refs/tags/{FSDD_VERSION}.tar.gz",
    f"https://codeload.github.com/{FSDD_REPO}/tar.gz/refs/tags/{FSDD_VERSION}",
)
FSDD_RAW_URL = f"https://raw.githubusercontent.com/{FSDD_REPO}/{FSDD_VERSION}/recordings/{{name}}"
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
FSDD_SAMPLE_RATE = 8000
FSDD_NUM_FILES = 3000
BUNDLED_FSDD_DIR = os.path.join(FILES_DIR, "fsdd")
_MANIFEST = "fsdd-v1.0.9-MD5SUMS.gz"
_NAME_RE = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


# ----------------------------------------------------------------------------- WAV
def read_wav(path, dtype=np.float32):
    """Read a PCM WAV: ``(samples, sample_rate)``; samples (T,) mono or (T, channels), scaled to [-1, 1).

    ``dtype=np.int16`` returns the raw 16-bit integers (16-bit files only). Raises
    :class:`~minigen.data.DataError` for files that are not PCM WAV (naming the file).
    """
    path = os.fspath(check_path(path, "read_wav"))
    if not os.path.exists(path):
        raise DatasetNotFoundError(f"WAV file not found: {path}")
    try:
        with wave.open(path, "rb") as w:
            nch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as e:
        raise DataError(f"{path}: not a readable PCM WAV file ({e})") from None
    if width == 1:
        s = np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128
        scale = 128.0
    elif width == 2:
        s = np.frombuffer(raw, dtype="<i2")
        scale = 32768.0
    elif width == 4:
        s = np.frombuffer(raw, dtype="<i4")
        scale = 2147483648.0
    else:
        raise DataError(f"{path}: {8 * width}-bit samples are not supported (8, 16 or 32-bit PCM)")
    if s.size != n * nch:
        raise DataError(f"{path}: header says {n} frames x {nch} channels but the data holds {s.size} samples")
    s = s.reshape(n, nch) if nch > 1 else s.reshape(n)
    dt = np.dtype(dtype)
    if dt == np.int16:
        if width != 2:
            raise DTypeError(f"read_wav: dtype=int16 needs a 16-bit file; {path} has {8 * width}-bit samples")
        return s.astype(np.int16), rate
    if dt.kind != "f":
        raise DTypeError(f"read_wav: dtype must be a float type or int16, got {dt}")
    return (s.astype(np.float64) / scale).astype(dt), rate


def write_wav(path, audio, sample_rate: int = FSDD_SAMPLE_RATE) -> str:
    """Write 16-bit PCM: ``audio`` float in [-1, 1] (clipped; s = round(x * 32767)) or int16; (T,) or (T, ch).

    Accepts NumPy/CuPy arrays or Tensors. Returns the path.
    """
    check_path(path, "write_wav")
    a = audio.array if hasattr(audio, "array") and hasattr(audio, "requires_grad") else audio
    if hasattr(a, "get"):  # CuPy
        a = a.get()
    try:
        a = np.asarray(a)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"write_wav: audio must be an array of samples, got {type(audio).__name__} "
                                   f"({e})") from None
    if a.ndim not in (1, 2) or a.size == 0:
        raise ShapeError(f"write_wav: expected non-empty samples (T,) or (T, channels), got shape {a.shape}")
    if a.dtype == np.int16:
        s = a
    elif a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise InvalidArgumentError(f"write_wav: the audio (shape {a.shape}) has NaN or inf samples")
        s = np.round(np.clip(a.astype(np.float64), -1.0, 1.0) * 32767.0).astype(np.int16)
    else:
        raise DTypeError(f"write_wav: expected float samples in [-1, 1] or int16, got dtype {a.dtype}")
    sr = check_size(sample_rate, "write_wav", "sample_rate", 1)
    if sr <= 0 or sr != sample_rate:
        raise InvalidArgumentError(f"write_wav: sample_rate must be a positive integer, got {sample_rate!r}")
    nch = 1 if s.ndim == 1 else s.shape[1]
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with wave.open(path, "wb") as w:
        w.setnchannels(nch)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(np.ascontiguousarray(s).astype("<i2").tobytes())
    return path


# ----------------------------------------------------------------------------- FSDD names, manifest
def parse_fsdd_name(name: str):
    """``'7_jackson_32.wav' -> (7, 'jackson', 32)``; None if the name does not follow the pattern."""
    m = _NAME_RE.match(os.path.basename(name))
    if not m:
        return None
    return int(m.group(1)), m.group(2), int(m.group(3))


def fsdd_split(index: int) -> str:
    """The official split of a recording index: 'test' for 0-4, 'train' for 5 and above."""
    return "test" if int(index) < 5 else "train"


@lru_cache(maxsize=1)
def fsdd_manifest() -> dict:
    """``{file name: md5}`` of all 3,000 recordings of FSDD v1.0.9 (shipped with minigen)."""
    p = os.path.join(BUNDLED_FSDD_DIR, _MANIFEST)
    if not os.path.exists(p):
        raise DatasetNotFoundError(f"the FSDD checksum manifest {p} is missing; reinstall minigen "
                                   "(the wheel ships minigen/data/files/fsdd/*)")
    out = {}
    with gzip.open(p, "rt", encoding="ascii") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                out[parts[1]] = parts[0]
    return out


def bundled_fsdd_sha256() -> dict:
    """``{file name: sha256}`` of the bundled subset (its ``SHA256SUMS``)."""
    out = {}
    with open(os.path.join(BUNDLED_FSDD_DIR, "SHA256SUMS"), encoding="ascii") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                out[parts[1]] = parts[0]
    return out


def _md5_bytes(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def _md5_file(path: str) -> str:
    with open(path, "rb") as f:
        return _md5_bytes(f.read())


# ----------------------------------------------------------------------------- download + cache
def _cache_dir(root=None) -> str:
    return os.path.join(data_root(root), "fsdd", "recordings")


def _offline_message(folder, extra=()):
    lines = [f"Free Spoken Digit Dataset {FSDD_VERSION} not found in {folder}.",
             "Either:",
             f"  - put the {FSDD_NUM_FILES} WAV files ({{digit}}_{{speaker}}_{{index}}.wav) of "
             f"https://github.com/{FSDD_REPO}/tree/{FSDD_VERSION}/recordings into {folder}",
             f"    (e.g. unpack {FSDD_ARCHIVE_URLS[0]} and copy its recordings/ folder there;",
             "    set MINIGEN_DATA to change the cache folder), or",
             "  - pass root=<a folder with the WAVs> (any subset works), or",
             "  - pass download=True when online, or",
             "  - pass bundled=True for the 60-file subset shipped with minigen (minigen/data/files/fsdd)."]
    return "\n".join(list(lines) + list(extra))


def _safe_wav_members(tar: tarfile.TarFile):
    """Members ``<top>/recordings/<name>.wav`` of the archive, as (basename, member); nothing else is read."""
    for m in tar.getmembers():
        if not m.isfile():
            continue
        parts = m.name.replace("\\", "/").split("/")
        if len(parts) >= 2 and parts[-2] == "recordings" and parse_fsdd_name(parts[-1]) is not None:
            yield parts[-1], m


def download_fsdd(root=None, archive_urls=None, raw_url=None, timeout: float = 60.0) -> str:
    """Fetch FSDD v1.0.9 into ``data_root(root)/fsdd/recordings``; returns that folder.

    Files already there with the right MD5 are kept. The tag's archive (``FSDD_ARCHIVE_URLS``) is
    streamed to a temporary file and only ``recordings/*.wav`` are extracted; if no archive can be
    fetched, missing files are fetched one by one from ``FSDD_RAW_URL``. Every file is checked against
    :func:`fsdd_manifest` before it is moved into place. Raises
    :class:`~minigen.data.DatasetNotFoundError` (saying what to put where) when files remain missing.
    """
    manifest = fsdd_manifest()
    folder = _cache_dir(root)
    os.makedirs(folder, exist_ok=True)

    def missing():
        out = []
        for name, md5 in manifest.items():
            p = os.path.join(folder, name)
            if not (os.path.exists(p) and _md5_file(p) == md5):
                out.append(name)
        return out

    todo = set(missing())
    if not todo:
        return folder
    errors = []
    bad = []
    for url in (FSDD_ARCHIVE_URLS if archive_urls is None else tuple(archive_urls)):
        try:
            with tempfile.TemporaryFile() as tmp:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    shutil.copyfileobj(resp, tmp, 1 << 16)
                tmp.seek(0)
                with tarfile.open(fileobj=tmp, mode="r:*") as tar:
                    for name, member in _safe_wav_members(tar):
                        if name not in todo:
                            continue
                        data = tar.extractfile(member).read()
                        if _md5_bytes(data) != manifest[name]:
                            bad.append(f"{name} from {url}: MD5 {_md5_bytes(data)} != {manifest[name]}")
                            continue
                        _atomic_write(os.path.join(folder, name), data)
                        todo.discard(name)
            if not todo:
                return folder
        except (urllib.error.URLError, OSError, tarfile.TarError, EOFError, ValueError) as e:
            errors.append(f"tried {url}: {e}")
    raw = FSDD_RAW_URL if raw_url is None else raw_url
    if raw and todo:
        for name in sorted(todo):
            url = raw.format(name=name)
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    data = resp.read()
            except (urllib.error.URLError, OSError, ValueError) as e:
                errors.append(f"tried {url}: {e}")
                break  # offline: do not try 3,000 URLs
            if _md5_bytes(data) != manifest[name]:
                bad.append(f"{name} from {url}: MD5 {_md5_bytes(data)} != {manifest[name]}")
                continue
            _atomic_write(os.path.join(folder, name), data)
            todo.discard(name)
    if todo:
        extra = [f"{len(todo)} of {len(manifest)} files are still missing (e.g. {sorted(todo)[0]})."]
        extra += ["  " + e for e in errors[:4]] + ["  " + b for b in bad[:4]]
        raise DatasetNotFoundError(_offline_message(folder, extra))
    return folder


def _atomic_write(dest: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix="." + os.path.basename(dest) + ".",
                               suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _check_index(index, n):
    if hasattr(index, "item") and not isinstance(index, (int, np.integer)):
        index = index.item()
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise InvalidArgumentError(f"FSDD index must be an int, got {type(index).__name__}")
    if not -n <= int(index) < n:
        raise IndexOutOfRangeError(f"index {index} is out of range for an FSDD split of {n} recordings")
    return int(index) % n


def _wav_names(folder: str):
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(n for n in names if parse_fsdd_name(n) is not None)


def _resolve_folder(root, bundled, download):
    if bundled:
        if root is not None:
            raise InvalidArgumentError("FSDD: pass either root= or bundled=True, not both")
        if not _wav_names(BUNDLED_FSDD_DIR):
            raise DatasetNotFoundError(f"the bundled FSDD subset is missing from {BUNDLED_FSDD_DIR}; reinstall "
                                       "minigen (setup.py's package_data must include data/files/fsdd/*)")
        return BUNDLED_FSDD_DIR, "bundled"
    if root is not None:
        base = os.path.abspath(os.path.expanduser(os.fspath(root)))
        for cand in (base, os.path.join(base, "recordings"), os.path.join(base, "fsdd", "recordings")):
            if _wav_names(cand):
                return cand, "root"
        if download:
            return download_fsdd(root), "download"
        raise DatasetNotFoundError(_offline_message(base, [f"(no {{digit}}_{{speaker}}_{{index}}.wav files in "
                                                           f"{base}, {base}/recordings or {base}/fsdd/recordings)"]))
    folder = _cache_dir()
    if download:
        return download_fsdd(), "download"
    if _wav_names(folder):
        return folder, "cache"
    raise DatasetNotFoundError(_offline_message(folder))


# ----------------------------------------------------------------------------- dataset
class FSDD(Dataset):
    """The Free Spoken Digit Dataset: items ``(audio float32 (T,) in [-1, 1), digit int)``.

    ``FSDD(root=None, split='train'|'test'|'all', download=False, bundled=False, digits=None,
    speakers=None, verify=False)``. ``split`` follows the official split (index 0-4 test, 5-49 train);
    ``digits`` / ``speakers`` keep only those. ``verify=True`` checks every file's MD5 against the v1.0.9
    manifest (files not in it, e.g. from a later version, are accepted). Attributes: ``files``,
    ``digits``, ``speakers``, ``indices`` (one entry per item), ``folder``, ``source``
    ('root', 'bundled', 'cache' or 'download'), ``sample_rate`` (8000). Audio is read lazily and cached.
    """

    def __init__(self, root=None, split="train", download=False, bundled=False, digits=None, speakers=None,
                 verify=False):
        if split not in ("train", "test", "all"):
            raise InvalidArgumentError(f"FSDD: split must be 'train', 'test' or 'all', got {split!r}")
        self.split = split
        self.folder, self.source = _resolve_folder(root, bundled, download)
        keep_d = None if digits is None else {int(d) for d in digits}
        keep_s = None if speakers is None else {str(s) for s in speakers}
        entries = []
        for name in _wav_names(self.folder):
            d, s, i = parse_fsdd_name(name)
            if split != "all" and fsdd_split(i) != split:
                continue
            if (keep_d is not None and d not in keep_d) or (keep_s is not None and s not in keep_s):
                continue
            entries.append((d, s, i, name))
        entries.sort(key=lambda e: (e[0], e[1], e[2]))
        if not entries:
            raise DatasetNotFoundError(f"FSDD: no recordings in {self.folder} for split={split!r}, digits={digits}, "
                                       f"speakers={speakers}")
        self.digits = [e[0] for e in entries]
        self.speakers = [e[1] for e in entries]
        self.indices = [e[2] for e in entries]
        self.files = [os.path.join(self.folder, e[3]) for e in entries]
        self.sample_rate = FSDD_SAMPLE_RATE
        self._cache = {}
        if verify:
            manifest = fsdd_manifest()
            for p in self.files:
                name = os.path.basename(p)
                if name in manifest and _md5_file(p) != manifest[name]:
                    raise DataError(f"FSDD: {p} has MD5 {_md5_file(p)}, FSDD {FSDD_VERSION} has {manifest[name]}")

    def __len__(self):
        return len(self.files)

    def audio(self, i: int) -> np.ndarray:
        """The float32 samples of item ``i`` (read once, then cached; read-only)."""
        i = _check_index(i, len(self))
        if i not in self._cache:
            x, rate = read_wav(self.files[i])
            if x.ndim != 1:
                raise DataError(f"{self.files[i]}: FSDD recordings are mono, this one has {x.shape[1]} channels")
            if rate != FSDD_SAMPLE_RATE:
                raise DataError(f"{self.files[i]}: FSDD recordings are at {FSDD_SAMPLE_RATE} Hz, this one is at "
                                f"{rate} Hz")
            x.setflags(write=False)
            self._cache[i] = x
        return self._cache[i]

    def __getitem__(self, index):
        i = _check_index(index, len(self))
        return self.audio(i), self.digits[i]

    def __repr__(self):
        return (f"FSDD(split={self.split!r}, n={len(self)}, source={self.source!r}, folder={self.folder!r})")


def load_fsdd(split="train", root=None, download=False, bundled=False, **kw):
    """``[(audio float32 (T,), digit, speaker, index), ...]`` of one split (see :class:`FSDD`)."""
    ds = FSDD(root=root, split=split, download=download, bundled=bundled, **kw)
    return [(ds.audio(i), ds.digits[i], ds.speakers[i], ds.indices[i]) for i in range(len(ds))]

