"""The pre-commit hook end to end: real pre-commit, a real git repo, the hook built from this checkout.

pre-commit installs the hook by cloning this checkout at ``git rev-parse HEAD`` and pip-installing
it into a virtualenv, so only committed code is exercised (CI runs on a committed clone). The first
run for a given commit needs the package registry and takes tens of seconds; the environment is kept
in ``<checkout>/.pre-commit-cache`` (``PRE_COMMIT_HOME``) and reused offline while HEAD is unchanged.
Environments of older commits are removed with ``pre-commit gc`` at the end of the test.

``pre-commit try-repo`` is not tested: it always builds its hook environment in a fresh temporary
store, so it would cost a full install on every run.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import onnx
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
SQUEEZENET = os.path.join(LIGHT, "light_squeezenet.onnx")  # 349 M MACs
RESNET50 = os.path.join(LIGHT, "light_resnet50.onnx")  # 4.09 G MACs
PRE_COMMIT_HOME = os.path.join(ROOT, ".pre-commit-cache")
BUILD_TIMEOUT = 1200  # seconds: the first commit pip-installs the hook environment

PYPROJECT = """\
[tool.onnxscore]
max_macs = "400M"
"""


def _git_env(tmp: str) -> dict:
    """A copy of the environment without the caller's git state or global/system git config
    (a user's core.hooksPath or commit signing must not leak in); HOME stays, so pip's cache does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env.update(PRE_COMMIT_HOME=PRE_COMMIT_HOME, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="onnxscore test", GIT_AUTHOR_EMAIL="test@onnxscore.invalid",
               GIT_COMMITTER_NAME="onnxscore test", GIT_COMMITTER_EMAIL="test@onnxscore.invalid",
               ONNXSCORE_CACHE_DIR=os.path.join(tmp, "onnxscore-cache"), PRE_COMMIT_COLOR="never")
    return env


def _run(args, cwd, env, timeout=120):
    """Run a command, stdout and stderr merged into one text."""
    return subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


def _checkout_head() -> str:
    """HEAD of this checkout, skipping when there is none or the hook manifest is not committed."""
    if shutil.which("git") is None:
        pytest.skip(reason="git is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    head = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip(reason=f"{ROOT} is not a git checkout with a commit, so pre-commit cannot clone it")
    toplevel, rev = head.stdout.split()
    if os.path.realpath(toplevel) != os.path.realpath(ROOT):
        pytest.skip(reason=f"{ROOT} is not the top of its git checkout ({toplevel})")
    manifest = subprocess.run(["git", "cat-file", "-e", f"{rev}:.pre-commit-hooks.yaml"], cwd=ROOT, env=env,
                              capture_output=True)
    if manifest.returncode != 0:
        pytest.skip(reason=f"HEAD ({rev[:12]}) has no .pre-commit-hooks.yaml: commit it first, "
                           "pre-commit installs the hook from the committed tree")
    return rev


@pytest.fixture
def hook_repo():
    """A git repo with a [tool.onnxscore] budget and pre-commit installed with the onnxscore hook
    from this checkout at HEAD; yields (folder, env)."""
    try:
        import pre_commit  # noqa: F401
    except ImportError:
        pytest.skip(reason="pre-commit is not installed (pip install -e '.[test]')")
    if not (os.path.isfile(SQUEEZENET) and os.path.isfile(RESNET50)):
        pytest.skip(reason=f"the installed onnx wheel ships no light SqueezeNet/ResNet-50 in {LIGHT}")
    rev = _checkout_head()
    tmp = tempfile.mkdtemp(prefix="onnxscore-precommit-")
    repo = os.path.join(tmp, "repo")
    env = _git_env(tmp)
    try:
        os.makedirs(os.path.join(repo, "models"))
        with open(os.path.join(repo, "pyproject.toml"), "w", encoding="utf-8") as f:
            f.write(PYPROJECT)
        with open(os.path.join(repo, ".pre-commit-config.yaml"), "w", encoding="utf-8") as f:
            f.write(f"repos:\n-   repo: {ROOT}\n    rev: {rev}\n    hooks:\n    -   id: onnxscore-check\n")
        for args in (["git", "init", "-q"], ["git", "config", "user.name", "onnxscore test"],
                     ["git", "config", "user.email", "test@onnxscore.invalid"],
                     [sys.executable, "-m", "pre_commit", "install"]):
            res = _run(args, repo, env)
            assert res.returncode == 0, f"{' '.join(args)} failed:\n{res.stdout}"
        yield repo, env
        # drop the hook environments of older commits of this checkout; the current one stays
        res = _run([sys.executable, "-m", "pre_commit", "gc"], repo, env)
        assert res.returncode == 0, res.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _commit(repo, env, model, dest, message):
    shutil.copyfile(model, os.path.join(repo, dest))
    add = _run(["git", "add", "-A"], repo, env)
    assert add.returncode == 0, add.stdout
    return _run(["git", "commit", "-m", message], repo, env, timeout=BUILD_TIMEOUT)


def _commits(repo, env) -> int:
    res = _run(["git", "rev-list", "--count", "--all"], repo, env)
    return int(res.stdout) if res.returncode == 0 else 0


def test_commit_within_budget_passes_and_over_budget_is_rejected(hook_repo):
    repo, env = hook_repo

    ok = _commit(repo, env, SQUEEZENET, "models/squeezenet.onnx", "a model within budget")
    assert ok.returncode == 0, f"the commit of a model within budget failed:\n{ok.stdout}"
    assert "onnxscore budget check" in ok.stdout and "Passed" in ok.stdout, ok.stdout
    assert _commits(repo, env) == 1

    over = _commit(repo, env, RESNET50, "models/resnet50.onnx", "a model over budget")
    assert over.returncode != 0, f"the commit of a model over budget went through:\n{over.stdout}"
    assert "Failed" in over.stdout, over.stdout
    line = next((x for x in over.stdout.splitlines() if x.startswith("models/resnet50.onnx:")), None)
    assert line is not None, f"no line names the model:\n{over.stdout}"
    assert "MACs 4.09 G exceed budget 400 M" in line, line
    assert "squeezenet" not in over.stdout, "pre-commit passes only the staged files to the hook"
    assert _commits(repo, env) == 1, "the rejected commit must not be recorded"


def test_hook_skips_commits_without_models(hook_repo):
    repo, env = hook_repo
    with open(os.path.join(repo, "README.md"), "w", encoding="utf-8") as f:
        f.write("no models here\n")
    _run(["git", "add", "-A"], repo, env)
    res = _run(["git", "commit", "-m", "docs only"], repo, env, timeout=BUILD_TIMEOUT)
    assert res.returncode == 0, res.stdout
    assert "(no files to check)Skipped" in res.stdout.replace(".", ""), res.stdout
