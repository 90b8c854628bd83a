"""The run report renders in a real browser: curves, tables, browsable trajectories."""

import pytest

from agentgym.cli import main
from tests.conftest import train_digits


@pytest.mark.browser
@pytest.mark.slow
def test_train_report_renders_in_chromium(tiny_model, tmp_path, open_page):
    code = train_digits(
        tiny_model,
        tmp_path,
        "trainer.steps=3",
        "trainer.tasks_per_step=2",
        "trainer.group_size=2",
        "sampling.max_new_tokens=8",
    )
    assert code == 0
    page = open_page((tmp_path / "report.html").as_uri())
    assert page.locator("svg.chart").count() == 4
    lines = page.locator("svg.chart polyline.series")
    assert lines.count() == 8
    assert len(lines.first.get_attribute("points").split()) == 3  # one point per step
    trajectories = page.locator("details.trajectory")
    assert trajectories.count() == 8  # 4 episodes of the first and of the last step
    first = trajectories.first
    assert not first.locator(".msg.user").first.is_visible()
    first.locator("summary").click()
    assert first.locator(".msg.user").first.is_visible()
    assert "reply with digits only" in first.locator(".msg.user").first.inner_text()
    assert first.locator(".parts").inner_text().startswith("reward parts")


@pytest.mark.browser
def test_eval_report_shows_summary(tmp_path, open_page):
    assert main(["eval", "episodes=4", "group_size=2", f"out={tmp_path}"]) == 0
    page = open_page((tmp_path / "report.html").as_uri())
    text = page.locator("body").inner_text()
    assert "Evaluation" in text and "success_rate" in text
    assert page.locator("details.trajectory").count() == 4
    assert page.locator("svg.chart").count() == 0


def test_report_command_needs_a_run_dir(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "config key 'run'" in capsys.readouterr().err
