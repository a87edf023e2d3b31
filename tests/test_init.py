"""`cdpio init` writes a config that loads, and never clobbers one."""

from __future__ import annotations

from cdpio_cli.config import load_config
from tests.cli_helpers import run_cli


def test_init_writes_a_config_that_reads_env_vars(tmp_path):
    result = run_cli("init", cwd=tmp_path)
    assert result.code == 0, result.stderr
    text = (tmp_path / "cdpio.yaml").read_text()
    assert "${SEGMENT_WRITE_KEY}" in text and "${CUSTOMERIO_TRACK_API_KEY}" in text
    env = {"SEGMENT_WRITE_KEY": "w" * 32, "CUSTOMERIO_SITE_ID": "a" * 20, "CUSTOMERIO_TRACK_API_KEY": "b" * 20}
    cfg = load_config(tmp_path / "cdpio.yaml", env=env).config
    assert cfg.segment.write_key == "w" * 32 and cfg.customerio.region == "auto"


def test_init_refuses_to_overwrite_without_force(tmp_path):
    (tmp_path / "cdpio.yaml").write_text("# mine\n")
    result = run_cli("init", cwd=tmp_path)
    assert result.code == 2 and "--force" in result.stderr
    assert (tmp_path / "cdpio.yaml").read_text() == "# mine\n"
    assert run_cli("init", "--force", cwd=tmp_path).code == 0
    assert "${SEGMENT_WRITE_KEY}" in (tmp_path / "cdpio.yaml").read_text()


def test_init_custom_path_and_json(tmp_path):
    result = run_cli("init", "--path", "conf/x.yaml", "--json", cwd=tmp_path)
    assert result.code == 2 and result.json["ok"] is False  # conf/ does not exist
    (tmp_path / "conf").mkdir()
    result = run_cli("init", "--path", "conf/x.yaml", "--json", cwd=tmp_path)
    assert result.code == 0 and result.json["checks"][0]["message"] == "wrote conf/x.yaml"
