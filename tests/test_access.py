"""genre.access: a dataset folder is accepted only under the allowed roots, after resolving
``~``, ``..`` and symbolic links."""
from __future__ import annotations

import os

import pytest

from genre.access import ROOTS_ENV, AccessError, allowed_roots, check_dataset_folder
from genre.locations import HOME


@pytest.fixture
def tmp(tmp_path):
    """The test's folder with its links resolved, so results compare equal."""
    return tmp_path.resolve()


def test_default_roots_are_data_and_genre_data_dir(tmp):
    assert allowed_roots(environ={}) == ((HOME / "data").resolve(),)
    assert allowed_roots(environ={"GENRE_DATA_DIR": str(tmp)}) == ((HOME / "data").resolve(), tmp)


def test_genre_data_roots_replaces_the_defaults(tmp):
    a, b = tmp / "a", tmp / "b"
    env = {ROOTS_ENV: f"{a}{os.pathsep}{os.pathsep} {b} {os.pathsep}{a}", "GENRE_DATA_DIR": str(tmp / "c")}
    assert allowed_roots(environ=env) == (a, b)
    assert allowed_roots(environ={ROOTS_ENV: os.pathsep}) == ((HOME / "data").resolve(),)


def test_folders_under_a_root_are_accepted_resolved(tmp):
    root = tmp / "root"
    (root / "gtzan" / "blues").mkdir(parents=True)
    assert check_dataset_folder(root, roots=[root]) == root
    assert check_dataset_folder(f"{root}/gtzan/blues/..", roots=[root]) == root / "gtzan"
    assert check_dataset_folder(root / "not-yet-there", roots=[root]) == root / "not-yet-there"


@pytest.mark.parametrize("outside", ["/", "/etc", "{root}/..", "{root}/gtzan/../../other", "{root}-sibling", "{other}"])
def test_folders_outside_every_root_are_refused(tmp, outside):
    root, other = tmp / "root", tmp / "other"
    (root / "gtzan").mkdir(parents=True)
    other.mkdir()
    folder = outside.format(root=root, other=other)
    with pytest.raises(AccessError) as err:
        check_dataset_folder(folder, roots=[root])
    message = str(err.value)
    assert folder in message and str(root) in message and ROOTS_ENV in message


def test_a_link_inside_a_root_to_a_folder_outside_is_refused(tmp):
    root, secret = tmp / "root", tmp / "secret"
    root.mkdir()
    secret.mkdir()
    (root / "escape").symlink_to(secret, target_is_directory=True)
    with pytest.raises(AccessError):
        check_dataset_folder(root / "escape", roots=[root])


def test_a_root_reached_through_a_link_accepts_its_real_folder(tmp):
    real = tmp / "real"
    (real / "blues").mkdir(parents=True)
    (tmp / "link").symlink_to(real, target_is_directory=True)
    assert check_dataset_folder(real / "blues", roots=[tmp / "link"]) == real / "blues"
    assert check_dataset_folder(tmp / "link" / "blues", roots=[real]) == real / "blues"


@pytest.mark.parametrize("bad", ["", "   ", "bad\0path", "~no-such-user-here/x"])
def test_unusable_paths_are_refused_with_a_message(tmp, bad):
    with pytest.raises(AccessError) as err:
        check_dataset_folder(bad, roots=[tmp])
    assert str(err.value)


def test_the_roots_come_from_the_environment_when_not_given(tmp, monkeypatch):
    monkeypatch.setenv(ROOTS_ENV, str(tmp))
    assert check_dataset_folder(tmp / "x") == tmp / "x"
    with pytest.raises(AccessError):
        check_dataset_folder(HOME / "data")
