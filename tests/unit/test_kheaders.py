"""Kernel header discovery on fake trees: no root, no bcc, nothing outside tmp_path."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from tracing.engine.kheaders import (
    ENV_SOURCE,
    HeaderChoice,
    default_cache_dir,
    find_kernel_headers,
    merge_trees,
    prepare_bcc_environment,
)

RELEASE = "6.18.44-test"


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def debian_pair(src: Path, version: str, arch: str = "amd64") -> tuple[Path, Path]:
    """A linux-headers-<version>-<arch> / -common pair shaped like Debian's."""
    arch_dir = write_tree(
        src / f"linux-headers-{version}-{arch}",
        {
            "Makefile": f"arch {version}",
            ".config": "CONFIG_BPF=y",
            "include/generated/autoconf.h": f"/* {version} */",
            "arch/x86/include/generated/asm/orc.h": "arch",
        },
    )
    common_dir = write_tree(
        src / f"linux-headers-{version}-common",
        {
            "Makefile": "common",
            "include/linux/kconfig.h": "kconfig",
            "include/linux/sched.h": "sched",
            "arch/x86/include/asm/ptrace.h": "ptrace",
            "arch/arm64/include/asm/ptrace.h": "arm64",
        },
    )
    return arch_dir, common_dir


def find(search: Path, cache: Path, **kwargs: object) -> HeaderChoice:
    """Search only `search`: no /lib/modules, no kheaders, no inherited environment."""
    options: dict[str, object] = {
        "release": RELEASE,
        "machine": "x86_64",
        "search_root": search,
        "modules_root": None,
        "kheaders_tarball": None,
        "cache_dir": cache,
        "environ": {},
    }
    options.update(kwargs)
    return find_kernel_headers(**options)  # type: ignore[arg-type]


def test_merge_gives_the_union_and_the_arch_tree_wins(tmp_path: Path) -> None:
    arch_dir, common_dir = debian_pair(tmp_path / "src", "6.1.0-56")
    merged = tmp_path / "merged"
    merge_trees(merged, [arch_dir, common_dir])

    assert (merged / "Makefile").read_text() == "arch 6.1.0-56"
    assert (merged / ".config").read_text() == "CONFIG_BPF=y"
    assert (merged / "include/linux/kconfig.h").read_text() == "kconfig"
    assert (merged / "include/generated/autoconf.h").is_file()
    # arch/x86/include exists in both: recursed into, so both halves are visible.
    assert (merged / "arch/x86/include/asm/ptrace.h").read_text() == "ptrace"
    assert (merged / "arch/x86/include/generated/asm/orc.h").read_text() == "arch"
    # Only in one tree: linked whole, not copied.
    assert (merged / "arch/arm64").is_symlink()
    assert os.path.realpath(merged / "arch/arm64") == str(common_dir / "arch/arm64")


def test_newest_version_and_matching_arch_are_chosen(tmp_path: Path) -> None:
    src = tmp_path / "src"
    debian_pair(src, "6.1.0-9")
    newest, common = debian_pair(src, "6.1.0-56")
    debian_pair(src, "6.1.0-56", arch="cloud-amd64")  # same version, less plain flavour
    debian_pair(src, "6.9.0-1", arch="arm64")  # newer, but another architecture

    choice = find(src, tmp_path / "cache")

    assert choice.kind == "fallback"
    assert choice.sources == (newest, common)
    assert choice.path is not None
    assert (choice.path / "include/generated/autoconf.h").read_text() == "/* 6.1.0-56 */"
    assert (choice.path / "include/linux/kconfig.h").is_file()
    assert "linux-headers-6.1.0-56-amd64" in choice.description


def test_ubuntu_layout_pairs_flavour_with_plain_version(tmp_path: Path) -> None:
    src = tmp_path / "src"
    flavour = write_tree(
        src / "linux-headers-5.15.0-91-generic", {"include/generated/autoconf.h": ""}
    )
    common = write_tree(src / "linux-headers-5.15.0-91", {"include/linux/kconfig.h": ""})

    choice = find(src, tmp_path / "cache")

    assert choice.kind == "fallback"
    assert choice.sources == (flavour, common)


def test_an_empty_search_dir_gives_none(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    choice = find(empty, tmp_path / "cache")

    assert choice.kind == "none"
    assert choice.path is None
    assert str(empty) in choice.description


def test_search_env_var_skips_the_exact_headers(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    write_tree(modules / RELEASE / "build", {"include/linux/kconfig.h": ""})
    empty = tmp_path / "empty"
    empty.mkdir()

    exact = find(tmp_path / "nowhere", tmp_path / "cache", modules_root=modules)
    searched = find(
        tmp_path / "nowhere",
        tmp_path / "cache",
        modules_root=modules,
        environ={"SIKTE_HEADER_SEARCH": str(empty)},
    )

    assert exact.kind == "exact"
    assert exact.path == modules / RELEASE / "build"
    assert searched.kind == "none"


def test_debian_split_modules_dir_counts_as_exact(tmp_path: Path) -> None:
    # /lib/modules/X/build has no kconfig.h on Debian; bcc compiles in source/ then.
    modules = tmp_path / "modules"
    write_tree(modules / RELEASE / "build", {"include/generated/autoconf.h": ""})
    write_tree(modules / RELEASE / "source", {"include/linux/kconfig.h": ""})

    assert find(tmp_path / "nowhere", tmp_path / "cache", modules_root=modules).kind == "exact"


def test_the_tree_is_reused_on_a_second_call(tmp_path: Path) -> None:
    debian_pair(tmp_path / "src", "6.1.0-56")
    first = find(tmp_path / "src", tmp_path / "cache")
    assert first.path is not None
    inode = first.path.stat().st_ino

    second = find(tmp_path / "src", tmp_path / "cache")

    assert second == first
    assert second.path is not None and second.path.stat().st_ino == inode
    leftovers = [p.name for p in first.path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temp dirs left behind


def test_a_stale_tree_is_rebuilt(tmp_path: Path) -> None:
    debian_pair(tmp_path / "src", "6.1.0-56")
    first = find(tmp_path / "src", tmp_path / "cache")
    assert first.path is not None
    (first.path / ".sikte-headers.json").write_text('{"sources": ["somewhere else"]}')
    inode = first.path.stat().st_ino

    second = find(tmp_path / "src", tmp_path / "cache")

    assert second.path == first.path
    assert second.path.stat().st_ino != inode
    assert (second.path / "include/linux/kconfig.h").is_file()


def test_kheaders_tarball_is_extracted_into_the_cache(tmp_path: Path) -> None:
    tarball = tmp_path / "kheaders.tar.xz"
    with tarfile.open(tarball, "w:xz") as tar:
        for name, data in (("./include/linux/kconfig.h", b"k"), ("../escape.h", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    choice = find(tmp_path / "nowhere", tmp_path / "cache", kheaders_tarball=tarball)

    assert choice.kind == "kheaders"
    assert choice.path == tmp_path / "cache" / "kheaders" / RELEASE
    assert (choice.path / "include/linux/kconfig.h").read_bytes() == b"k"
    assert not (tmp_path / "cache" / "kheaders" / "escape.h").exists()
    env: dict[str, str] = {}
    prepare_bcc_environment(choice, env)
    assert env[ENV_SOURCE] == str(choice.path)


def test_prepare_sets_bcc_kernel_source_for_fallback(tmp_path: Path) -> None:
    debian_pair(tmp_path / "src", "6.1.0-56")
    choice = find(tmp_path / "src", tmp_path / "cache")
    env: dict[str, str] = {}

    effective = prepare_bcc_environment(choice, env)

    assert effective == choice
    assert env[ENV_SOURCE] == str(choice.path)
    # Our own setting is not mistaken for the user's on the next look-up.
    assert find(tmp_path / "src", tmp_path / "cache", environ=env).kind == "fallback"


def test_prepare_leaves_exact_and_none_alone(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    prepare_bcc_environment(HeaderChoice("exact", Path("/lib/modules/x/build"), "exact"), env)
    prepare_bcc_environment(HeaderChoice("none", None, "nothing"), env)
    assert env == {}


def test_a_user_set_bcc_kernel_source_is_kept(tmp_path: Path) -> None:
    debian_pair(tmp_path / "src", "6.1.0-56")
    env = {ENV_SOURCE: "/opt/my-kernel"}

    found = find(tmp_path / "src", tmp_path / "cache", environ=env)
    fallback = find(tmp_path / "src", tmp_path / "cache")
    effective = prepare_bcc_environment(fallback, env)

    assert found.kind == "user"
    assert found.path == Path("/opt/my-kernel")
    assert effective.kind == "user"
    assert env == {ENV_SOURCE: "/opt/my-kernel"}


def test_cache_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert default_cache_dir({"SIKTE_CACHE_DIR": str(tmp_path)}) == tmp_path
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    xdg = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert default_cache_dir(xdg) == tmp_path / "xdg" / "sikte-tui"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_cache_dir({}) == Path("/var/cache/sikte-tui")
