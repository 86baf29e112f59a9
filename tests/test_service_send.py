"""A one-click unsubscribe that arrives at the service while a live send is under way.

The send (``newsletter send --yes``) and the service (``newsletter serve``) are separate
processes on the same config, so the same state; the SMTP server is slow, so the send
takes seconds. An address unsubscribed after the send started, before its turn, must
not be delivered: the send checks the suppression list as it goes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from service_process import KEY, ROOT, ServiceProcess, one_click_path, settings_of
from smtp_server import Faults, SMTPServer
from test_send_cli import NOW, make_project

from newsletter.state.openers import open_suppressions

PEOPLE = 60
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.slow
def test_an_unsubscribe_during_a_live_send_stops_that_address(tmp_path: Path) -> None:
    leaving = f"reader{PEOPLE - 1:04d}@example.org"  # the last of the list
    with SMTPServer(faults=Faults(data_delay=0.1)) as smtp:
        project = make_project(tmp_path, smtp.port, PEOPLE, 'security = "none"\npool = 1')
        config = project / "newsletter.toml"
        with ServiceProcess(config) as service:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")},
                "PYTHONPATH": str(ROOT),
                "NEWSLETTER_SIGNING_KEY": KEY,
            }
            command = [sys.executable, "-m", "newsletter", "send", "--config", str(config)]
            send = subprocess.Popen(
                [*command, "--now", NOW, "--yes"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            try:
                smtp.wait_for(lambda: len(smtp.messages()) >= 3, timeout=60)
                reply = service.request(
                    "POST",
                    one_click_path(config, leaving),
                    b"List-Unsubscribe=One-Click",
                    FORM,
                )
                assert reply.status == 200
                delivered_then = len(smtp.messages())
                output, _ = send.communicate(timeout=120)
            finally:
                if send.poll() is None:
                    send.kill()
                    send.wait()
    assert delivered_then < PEOPLE - 1  # the POST came while the send was under way
    counts = smtp.per_recipient()
    assert counts[leaving] == 0, output.decode(errors="replace")
    assert sum(counts.values()) == PEOPLE - 1
    assert set(counts.values()) == {1}
    with open_suppressions(settings_of(config).paths.state) as store:
        found = store.get(leaving)
    assert found is not None
    assert found.source == "one-click"
