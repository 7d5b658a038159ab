"""uptimed's demo: watch a local shop go down and come back, and see the notifications.

Run by ``make demo`` after ``scripts/services up``. It starts

- a little HTTP "shop" on 127.0.0.1 that answers 200, then 500 for a while, then 200 again;
- a webhook receiver on 127.0.0.1 that prints each notification it gets;
- ``uptimed run`` with a demo config (written to ``.data/demo/uptimed.toml``) watching the shop,
  with its web pages on 127.0.0.1 (user ``demo``, password ``uptimed-demo``);

and stops everything once the "up again" notification has arrived (with
``--stay``, uptimed keeps running until Ctrl-C so you can look around the
dashboard).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
BOLD, RED, GREEN, DIM, RESET = (
    ("\033[1m", "\033[31m", "\033[32m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("",) * 5
)
DEMO_USER, DEMO_PASSWORD = "demo", "uptimed-demo"


def say(text: str) -> None:
    print(f"{BOLD}demo:{RESET} {text}", flush=True)


async def run(argv: list[str], *, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` in a thread, so the shop and the receiver keep answering meanwhile."""
    return await asyncio.to_thread(subprocess.run, argv, check=check, capture_output=True, text=True, **kwargs)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def main(args: argparse.Namespace) -> int:
    # SIGTERM (a `kill`, a CI timeout) stops the demo like Ctrl-C does: uptimed is stopped too, not orphaned.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    shop = {"status": 200}
    notified: asyncio.Queue[dict] = asyncio.Queue()

    async def shop_page(_: web.Request) -> web.Response:
        return web.Response(
            status=shop["status"], text="Welcome to the demo shop" if shop["status"] == 200 else "Internal error"
        )

    async def webhook(request: web.Request) -> web.Response:
        body = await request.json()
        colour = RED if body["status"] == "down" else GREEN
        data = body["data"]
        print(
            f"\n{colour}{BOLD}  >>> notification: {body['event']}{RESET}{colour}  {data.get('name')} ({body['url']})\n"
            f"      reason: {data.get('reason')}   regions: {data.get('regions')}   event id: {data['eventId']}{RESET}\n",
            flush=True,
        )
        await notified.put(body)
        return web.Response(text="ok")

    shop_app = web.Application()
    shop_app.router.add_get("/", shop_page)
    hook_app = web.Application()
    hook_app.router.add_post("/hook", webhook)
    shop_runner, shop_port = await serve(shop_app)
    hook_runner, hook_port = await serve(hook_app)

    env = json.loads((await run([sys.executable, str(ROOT / "scripts" / "services"), "env", "--json"])).stdout)
    api_port = free_port()
    folder = Path(os.environ.get("UPTIMED_DATA_DIR", ROOT / ".data")) / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "uptimed.toml"
    config.write_text(
        textwrap.dedent(f"""\
        # Written by scripts/demo.py
        [database]
        dsn = "{env["UPTIMED_DATABASE__DSN"]}"

        [redis]
        url = "{env["UPTIMED_REDIS__URL"]}"
        key_prefix = "demo:"

        [kafka]
        bootstrap_servers = ["{env["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"]}"]
        evaluator_group = "demo-evaluator"
        notification_group = "demo-notification-group"
        topics = {{ checks = "demo.checks", events = "demo.website.events", dead_letters = "demo.dead-letters" }}

        [api]
        host = "127.0.0.1"
        port = {api_port}
        page_refresh = "2s"

        [log]
        format = "console"

        [[monitors]]
        owner = "demo"
        key = "shop"
        name = "Demo shop"
        target = "http://127.0.0.1:{shop_port}/"
        interval = "1s"
        timeout = "0.5s"
        failure_threshold = 2
        success_threshold = 2

        [[integrations]]
        owner = "demo"
        key = "console"
        type = "webhook"
        config = {{ webhookUrl = "http://127.0.0.1:{hook_port}/hook" }}
        """)
    )
    say(f"config written to {config}")
    say(f"the shop answers on http://127.0.0.1:{shop_port}/ ; notifications go to http://127.0.0.1:{hook_port}/hook")
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("UPTIMED_")}
    uptimed = [sys.executable, "-m", "uptimed"]
    # The config's [[monitors]] create the user too; creating it first lets us give it a password.
    # (It exists already from an earlier demo: that failure is fine.)
    await run(
        [*uptimed, "user", "create", DEMO_USER, "--email", "demo@example.com", "-c", str(config)],
        env=clean_env,
        check=False,
    )
    await run(
        [*uptimed, "user", "passwd", DEMO_USER, "--password-stdin", "-c", str(config)],
        env=clean_env,
        input=DEMO_PASSWORD + "\n",
    )
    say(f"{BOLD}the dashboard: http://127.0.0.1:{api_port}/{RESET} (sign in as {DEMO_USER} / {DEMO_PASSWORD})")
    daemon = await asyncio.create_subprocess_exec(*uptimed, "run", "-c", str(config), env=clean_env)
    try:
        say(f"uptimed is checking the shop every second; it breaks in {args.down_after:g} s")
        await asyncio.sleep(args.down_after)
        shop["status"] = 500
        say(f"{RED}the shop now answers 500{RESET}: uptimed calls it down after 2 failed checks")
        first = await asyncio.wait_for(notified.get(), 60)
        await asyncio.sleep(args.down_for)
        shop["status"] = 200
        say(f"{GREEN}the shop is fixed{RESET}: uptimed calls it up after 2 good checks")
        second = await asyncio.wait_for(notified.get(), 60)
        ok = first["event"] == "website.down" and second["event"] == "website.up"
        say(
            "done: one down and one up notification, each delivered once and recorded in notification_log"
            if ok
            else f"unexpected notifications: {first['event']}, {second['event']}"
        )
        if args.stay:
            say(f"uptimed keeps running: http://127.0.0.1:{api_port}/ ; Ctrl-C to stop")
            await daemon.wait()
        return 0 if ok else 1
    except TimeoutError:
        say("no notification within 60 s; see uptimed's log above")
        return 1
    finally:
        if daemon.returncode is None:
            daemon.send_signal(signal.SIGTERM)
            await daemon.wait()
        await shop_runner.cleanup()
        await hook_runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--down-after", type=float, default=8.0, help="seconds before the shop breaks")
    parser.add_argument("--down-for", type=float, default=10.0, help="seconds the shop stays broken after the alert")
    parser.add_argument("--stay", action="store_true", help="keep uptimed running afterwards, to look at its pages")
    try:
        sys.exit(asyncio.run(main(parser.parse_args())))
    except KeyboardInterrupt:
        sys.exit(130)
    except asyncio.CancelledError:
        sys.exit(143)
