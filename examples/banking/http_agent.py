"""A scripted agent calling `warded serve` over HTTP (any language could do the same).

    warded serve run examples/banking/service.yaml &
    python examples/banking/http_agent.py --url http://127.0.0.1:8080 --token wd_…

It lists its tools, makes a small payment, asks for a large one, waits until
a person approves it on the approvals page (http://127.0.0.1:8080/approvals),
then retries the identical call, which runs exactly once.
"""

from __future__ import annotations

import argparse
import time

import httpx

KNOWN = "GB33BUKB20201555555555"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--token", required=True, help="the agent's token")
    parser.add_argument("--wait", type=float, default=600, help="seconds to wait for approval")
    options = parser.parse_args()
    headers = {"authorization": f"Bearer {options.token}"}
    session = f"http-agent-{int(time.time())}"
    with httpx.Client(base_url=options.url, headers=headers, timeout=30) as api:
        tools = api.get("/v1/tools", params={"session": session}).json()["tools"]
        print("tools:", ", ".join(t["name"] for t in tools))

        def call(tool: str, args: dict[str, object]) -> dict[str, object]:
            body = {"tool": tool, "args": args, "session": session}
            answer: dict[str, object] = api.post("/v1/calls", json=body).json()
            print(f"{tool}({args}) -> {answer}")
            return answer

        call("get_balance", {})
        call("send_money", {"recipient": KNOWN, "amount": 42.5, "subject": "paper"})
        laptop = {"recipient": KNOWN, "amount": 1200, "subject": "laptop"}
        held = call("send_money", laptop)
        refusal = held.get("refusal")
        if not isinstance(refusal, dict) or refusal.get("code") != "approval_required":
            return
        approval = refusal["approval_id"]
        print(f"waiting for a person to approve {approval} on {options.url}/approvals …")
        deadline = time.monotonic() + options.wait
        status = "pending"
        while status == "pending" and time.monotonic() < deadline:
            time.sleep(2)
            status = api.get(f"/v1/approvals/{approval}").json()["status"]
        print(f"approval {approval}: {status}")
        if status == "approved":
            call("send_money", laptop)  # runs once
            call("send_money", laptop)  # a new payment: needs a new approval


if __name__ == "__main__":
    main()
