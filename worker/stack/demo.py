"""The demo `make run` seeds on first start: a SANDBOX connection, a partner function, an automation a minute.

It is an ordinary import bundle (see worker/cli/importer.py), so seeding it twice changes nothing. The
connection has no api_domain: SANDBOX connections then call SANDBOX_URL, which `run` points at the API's
own /sandbox on API_PORT, so the demo keeps working when the port changes.
"""

from __future__ import annotations

from typing import Any

DEMO_CODE = "demo-suppliers-every-minute"
DEMO_PARTNER_FUNCTION = "Demo supplier sync"


def demo_bundle() -> dict[str, Any]:
    """Seed 000's example automation on the sandbox's suppliers, every minute, looking at all records."""
    return {
        "connection": {
            "provider": "SANDBOX", "remote_instance_id": "demo-sandbox",
            "remote_instance_name": "Sandbox demo", "remote_instance_display": "Sandbox demo (make run)",
            "integration_access_token": "sandbox-demo-token", "token_type": "Bearer",
            "company_name": "Sandbox Demo Ltd",
        },
        "partner_functions": [{"partner_function": {
            "name": DEMO_PARTNER_FUNCTION, "direction": "IMPORT", "object_name": "supplier",
            "description": "Receives the suppliers the demo automation matches (the sandbox records them)",
            "event_name": "demoEvent", "tag": "demo",
        }}],
        "automations": [{"integration": {
            "automation_details": {
                "name": "Demo: suppliers every minute", "code": DEMO_CODE, "applies_to": "supplier",
                "applies_to_function": "all", "automation_type": "timerBased", "direction": "IMPORT",
                "check_on": "1 minute", "perform_action": DEMO_PARTNER_FUNCTION,
                "since_last_look_up": "false", "ignore_threshold": "1", "additional_criteria": "true",
            },
            "additional_criteria_details": [{"group_condition": "AND", "rules": [
                {"field_name": "AccountNumber", "operator": "EQUALS", "value": "1QKGUL", "condition": "AND"},
                {"field_name": "ContactID", "operator": "DOES_NOT_HAVE_VALUE", "condition": "AND"},
            ]}],
        }}],
    }
