"""Find kernel headers that bcc can compile against, without writing into /lib/modules.

bcc compiles its C programs against a kernel header tree. In order of preference:

1. `exact`: `/lib/modules/$(uname -r)/build` (the running kernel's own headers; bcc finds it).
2. `kheaders`: `/sys/kernel/kheaders.tar.xz` (CONFIG_IKHEADERS), extracted once into our cache.
3. `fallback`: the newest distribution header package under /usr/src. Tracepoint programs
   only use helpers and tracepoint formats read from tracefs, so headers of a nearby kernel
   compile and load. Debian splits them into `linux-headers-X-<arch>` and
   `linux-headers-X-common`; bcc wants one tree, so we build a merged symlink tree.
4. `none`: nothing usable.

A user-set BCC_KERNEL_SOURCE always wins and is reported as kind `user`.

For tests, `SIKTE_HEADER_SEARCH=DIR` searches only DIR (instead of /usr/src) and skips the
/lib/modules and kheaders checks, so pointing it at an empty directory gives kind `none`.
This module must not import bcc: the doctor uses it to explain a missing bcc too.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_SOURCE = "BCC_KERNEL_SOURCE"
ENV_SEARCH = "SIKTE_HEADER_SEARCH"
ENV_CACHE = "SIKTE_CACHE_DIR"
# Records the BCC_KERNEL_SOURCE we set, so a later look-up (or a child process) does not
# mistake our own choice for the user's.
_ENV_OURS = "SIKTE_SET_BCC_KERNEL_SOURCE"

MODULES_ROOT = Path("/lib/modules")
KHEADERS_TARBALL = Path("/sys/kernel/kheaders.tar.xz")
SEARCH_ROOT = Path("/usr/src")

# Written into every tree we build, so a cached tree is reused only for the same inputs.
_MARKER = ".sikte-headers.json"

# uname machine -> Debian architecture, the name Debian and Ubuntu header flavours carry.
_DEB_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

# linux-headers-<version>[-<flavour>]: 6.1.0-56-amd64, 6.12.9+bpo-common, 5.15.0-91-generic.
_PACKAGE_RE = re.compile(r"^linux-headers-(\d+(?:\.\d+)+(?:-\d+)?(?:\+[a-z0-9.~]+)?)(?:-(.+))?$")


@dataclass(frozen=True)
class HeaderChoice:
    """Where bcc will find kernel headers, and a sentence saying so for humans."""

    kind: str  # "exact", "kheaders", "fallback", "user" or "none"
    path: Path | None
    description: str
    sources: tuple[Path, ...] = field(default=())  # what a fallback tree was merged from


@dataclass(frozen=True)
class _Package:
    path: Path
    version: str
    flavour: str | None

    @property
    def version_key(self) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", self.version))


def find_kernel_headers(
    *,
    release: str | None = None,
    machine: str | None = None,
    search_root: Path | None = None,
    modules_root: Path | None = MODULES_ROOT,
    kheaders_tarball: Path | None = KHEADERS_TARBALL,
    cache_dir: Path | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> HeaderChoice:
    """Choose a header tree for the running kernel; may build or extract one in the cache.

    `modules_root=None` or `kheaders_tarball=None` skips that source; so does setting
    SIKTE_HEADER_SEARCH, which also replaces `search_root`'s default.
    """
    env = os.environ if environ is None else environ
    release = release or platform.release()
    machine = machine or platform.machine()
    if _user_source(env):
        return _user_choice(Path(env[ENV_SOURCE]))
    if env.get(ENV_SEARCH):
        search_root, modules_root, kheaders_tarball = Path(env[ENV_SEARCH]), None, None
    cache = cache_dir or default_cache_dir(env)
    if modules_root is not None and (exact := _exact_headers(modules_root / release)):
        return exact
    if kheaders_tarball is not None and kheaders_tarball.is_file():
        return _kheaders_choice(kheaders_tarball, cache / "kheaders" / release)
    return _fallback_choice(search_root or SEARCH_ROOT, release, machine, cache)


def prepare_bcc_environment(
    choice: HeaderChoice, environ: MutableMapping[str, str] | None = None
) -> HeaderChoice:
    """Point bcc at the chosen tree (BCC_KERNEL_SOURCE); return the choice in effect.

    `exact` needs nothing: bcc finds /lib/modules itself. A user's BCC_KERNEL_SOURCE is kept.
    """
    env = os.environ if environ is None else environ
    if _user_source(env):
        return _user_choice(Path(env[ENV_SOURCE]))
    # A kheaders choice whose path is the tarball means our extraction failed: bcc then
    # extracts it itself (to /tmp/kheaders-<release>) when BCC_KERNEL_SOURCE is unset.
    if choice.kind in ("fallback", "kheaders") and choice.path and choice.path.is_dir():
        env[ENV_SOURCE] = env[_ENV_OURS] = str(choice.path)
    return choice


def default_cache_dir(environ: MutableMapping[str, str] | None = None) -> Path:
    """$SIKTE_CACHE_DIR, else /var/cache/sikte-tui for root, else $XDG_CACHE_HOME/sikte-tui."""
    env = os.environ if environ is None else environ
    if env.get(ENV_CACHE):
        return Path(env[ENV_CACHE])
    if os.geteuid() == 0:
        return Path("/var/cache/sikte-tui")
    xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "sikte-tui"


def has_kconfig(tree: Path) -> bool:
    """bcc's own test for a usable tree: it force-includes include/linux/kconfig.h."""
    return (tree / "include/linux/kconfig.h").is_file()


def _user_source(env: MutableMapping[str, str]) -> bool:
    source = env.get(ENV_SOURCE)
    return bool(source) and source != env.get(_ENV_OURS)


def _user_choice(path: Path) -> HeaderChoice:
    return HeaderChoice("user", path, f"BCC_KERNEL_SOURCE={path} (set by the user)")


def _exact_headers(kdir: Path) -> HeaderChoice | None:
    # Mirrors bcc: with both build/ and source/ (Debian's split), bcc compiles in source/.
    build, source = kdir / "build", kdir / "source"
    tree = source if build.is_dir() and source.is_dir() else build
    if not has_kconfig(tree):
        return None
    return HeaderChoice("exact", build, f"headers of the running kernel in {build}")


# --- kheaders -------------------------------------------------------------------------------


def _kheaders_choice(tarball: Path, dest: Path) -> HeaderChoice:
    marker = {"tarball": str(tarball), "size": tarball.stat().st_size}
    try:
        if not _tree_is_current(dest, marker):
            _build_atomically(dest, marker, lambda tmp: _extract(tarball, tmp))
    except (OSError, tarfile.TarError) as err:
        return HeaderChoice(
            "kheaders", tarball, f"{tarball} (bcc extracts it itself; caching failed: {err})"
        )
    return HeaderChoice("kheaders", dest, f"the kernel's own headers ({tarball}) in {dest}")


def _extract(tarball: Path, dest: Path) -> None:
    with tarfile.open(tarball, "r:xz") as tar:
        members = [m for m in tar.getmembers() if _safe_member(m)]
        tar.extractall(dest, members=members)


def _safe_member(member: tarfile.TarInfo) -> bool:
    # The tarball is the kernel's, but Python 3.11.2 has no extraction filter: keep plain
    # files, directories and relative symlinks inside the tree.
    parts = Path(member.name).parts
    if member.name.startswith("/") or ".." in parts:
        return False
    if member.issym():
        return not member.linkname.startswith("/") and ".." not in Path(member.linkname).parts
    return member.isfile() or member.isdir()


# --- distribution packages --------------------------------------------------------------------


def _fallback_choice(root: Path, release: str, machine: str, cache: Path) -> HeaderChoice:
    best = _best_package(root, machine)
    if best is None:
        return HeaderChoice(
            "none", None, f"no kernel headers for {release} and no header package in {root}"
        )
    sources = (best.path, *_companions(best, _packages(root)))
    dest = cache / "kernel-headers" / best.path.name
    marker = {"sources": [str(s) for s in sources]}
    try:
        if not _tree_is_current(dest, marker):
            _build_atomically(dest, marker, lambda tmp: merge_trees(tmp, sources))
    except OSError as err:
        return HeaderChoice(
            "none", None, f"found {best.path.name} but could not build a tree in {dest}: {err}"
        )
    names = " + ".join(s.name for s in sources)
    return HeaderChoice("fallback", dest, f"{names}, merged in {dest}", sources)


def _packages(root: Path) -> list[_Package]:
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    found = []
    for entry in entries:
        match = _PACKAGE_RE.match(entry.name)
        if match and entry.is_dir():
            found.append(_Package(Path(entry.path), match[1], match[2]))
    return found


def _best_package(root: Path, machine: str) -> _Package | None:
    """The newest arch-specific package for this machine; on a tie the plainest flavour."""
    ranked = [
        (pkg.version_key, rank, pkg) for pkg in _packages(root) if (rank := _rank(pkg, machine))
    ]
    if not ranked:
        return None
    return max(ranked, key=lambda item: item[:2])[2]


def _rank(pkg: _Package, machine: str) -> int:
    """0 = unusable here (common-only, wrong arch, no config); higher = better flavour match."""
    flavour = pkg.flavour or ""
    if flavour.startswith("common") or not flavour:
        return 0  # arch-independent half: only ever merged in, never the primary
    if not (pkg.path / "include/generated/autoconf.h").exists():
        return 0
    deb_arch = _DEB_ARCH.get(machine, machine)
    tokens = flavour.split("-")
    if flavour == deb_arch:
        return 3  # linux-headers-6.1.0-56-amd64
    if deb_arch in tokens:
        return 2  # cloud-amd64, rt-amd64
    if any(arch in tokens for arch in _DEB_ARCH.values()):
        return 0  # another architecture's headers
    return 1  # Ubuntu's "generic" and other arch-neutral flavour names


def _companions(primary: _Package, packages: Iterable[_Package]) -> list[Path]:
    """The arch-independent half: Debian's X-common (X-common-rt for rt), Ubuntu's plain X."""
    wanted = ["common-rt", "common"] if "rt" in (primary.flavour or "").split("-") else ["common"]
    same = {pkg.flavour: pkg.path for pkg in packages if pkg.version == primary.version}
    for flavour in [*wanted, None]:
        if flavour in same:
            return [same[flavour]]
    return []


def merge_trees(dst: Path, sources: Iterable[Path]) -> None:
    """Symlink the union of `sources` into `dst`; earlier sources win on conflicts.

    Where several sources have a directory of the same name, recurse so both contribute.
    """
    dst.mkdir(parents=True, exist_ok=True)
    seen: dict[str, list[Path]] = {}
    for src in sources:
        for entry in os.scandir(src):
            seen.setdefault(entry.name, []).append(Path(entry.path).absolute())
    for name, paths in seen.items():
        dirs = [p for p in paths if p.is_dir()]
        # Debian's scripts/ and tools/ are symlinks to one kbuild dir: no need to merge it.
        if len(dirs) > 1 and len({os.path.realpath(d) for d in dirs}) > 1:
            merge_trees(dst / name, dirs)
        else:
            os.symlink(paths[0], dst / name)


# --- cache ----------------------------------------------------------------------------------


def _tree_is_current(dest: Path, marker: Mapping[str, object]) -> bool:
    """Reuse a tree built from the same inputs whose symlinks still resolve."""
    try:
        stored = json.loads((dest / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return stored == marker and has_kconfig(dest)


def _build_atomically(dest: Path, marker: Mapping[str, object],
                      build: Callable[[Path], None]) -> None:
    """Build into a temp dir next to `dest`, then rename it into place.

    Readers never see a half-built tree; a concurrent builder's finished tree is kept.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        build(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the tree is plain readable headers
        (tmp / _MARKER).write_text(json.dumps(marker))
        _replace_dir(tmp, dest, marker)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replace_dir(tmp: Path, dest: Path, marker: Mapping[str, object]) -> None:
    if dest.exists() or dest.is_symlink():
        # A stale tree: move it aside first, since rename() will not replace a non-empty dir.
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
        with contextlib.suppress(FileNotFoundError):  # someone else moved it already
            os.rename(dest, old / "tree")
        shutil.rmtree(old, ignore_errors=True)
    try:
        os.rename(tmp, dest)
    except OSError:
        if not _tree_is_current(dest, marker):  # lost a race to an equivalent build: fine
            raise
