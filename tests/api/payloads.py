"""The seed example payloads, verbatim (seed 000 and 001), and the response key sets they show."""

from __future__ import annotations

import copy
from typing import Any

CONNECTION = {
    "provider": "QuickBooks",
    "remote_instance_id": "tenant-9876543210",
    "remote_instance_code": "QB-TENANT-01",
    "remote_instance_name": "QuickBooks Demo Corp",
    "remote_instance_display": "QuickBooks Demo Corp (tenant-9876543210)",
    "integration_client_id": "qbclientid123",
    "integration_client_secret": "qbclientsecret456",
    "integration_access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
    "integration_refresh_token": "qbrefreshtoken789",
    "token_type": "Bearer",
    "expires_in": "2026-12-31",
    "account_server": "https://api.quickbooks.com",
    "api_domain": "https://api.quickbooks.com",
    "supporting_fields": "{\"region\":\"US\",\"tax\":\"SalesTax\"}",
    "user_name": "qb_integration_user",
    "user_password": "Str0ngP@ssw0rd!",
    "require_authentication": True,
    "state": "active",
    "company_file": "abc12345-def6-7890-gh12-ijklmnopqrst",
    "company_name": "QuickBooks Demo Corp",
}

PARTNER_FUNCTION = {
    "partner_function": {
        "name": "PartnerRole",
        "direction": "IMPORT",
        "description": "Handles partner data import operations",
        "object_name": "CustomerRecord",
        "object_mapping": "customer_to_partner",
        "event_name": "updateEvent",
        "tag": "import_inventory_process",
    }
}

PARTNER_FUNCTION_UPDATE = {
    "partner_function": {
        "name": "FUNCTION_NAME_PLACEHOLDER",
        "direction": "EXPORT",
        "description": "FUNCTION_DESCRIPTION_PLACEHOLDER",
        "object_name": "OBJECT_NAME_PLACEHOLDER",
        "object_mapping": "OBJECT_MAPPING_PLACEHOLDER",
        "event_name": "EVENT_NAME_PLACEHOLDER",
        "tag": "FUNCTION_TAG_PLACEHOLDER",
    }
}

SEED_PERFORM_ACTION = "49f4b6b2-c3a5-4f74-a044-8452ffc52eec"

AUTOMATION = {
    "integration": {
        "automation_details": {
            "name": "Test auto 260",
            "display_name": "Test auto 260",
            "code": "test2",
            "description_enabled": "true",
            "description": "checking3578",
            "another_automation": "Automation four",
            "applies_to": "supplier",
            "applies_to_function": "new",
            "automation_type": "timerBased",
            "direction": "IMPORT",
            "check_on": "8 hours",
            "custom_day": "thursday",
            "custom_time": "06:45:23",
            "do_not_over_write_latest_data": "true",
            "ignore_threshold": "1",
            "perform_action": SEED_PERFORM_ACTION,
            "since_last_look_up": "true",
            "additional_criteria": "true",
            "property_name": "",
        },
        "additional_criteria_details": [
            {
                "group_condition": "AND",
                "rules": [
                    {"field_name": "AccountNumber", "operator": "EQUALS", "value": "1QKGUL",
                     "condition": "AND"},
                    {"field_name": "ContactID", "operator": "DOES_NOT_HAVE_VALUE", "condition": "AND"},
                ],
            }
        ],
    }
}

# Seed 001's update body with its placeholders filled in with valid values (the keys are verbatim).
AUTOMATION_UPDATE = {
    "integration": {
        "automation_details": {
            "name": "AUTOMATION_NAME",
            "display_name": "DISPLAY_NAME",
            "code": "AUTOMATION_CODE",
            "description_enabled": "false",
            "description": "AUTOMATION_DESCRIPTION",
            "another_automation": "SECONDARY_AUTOMATION_NAME",
            "applies_to": "customer",
            "applies_to_function": "update",
            "automation_type": "timerBased",
            "check_on": "4 hours",
            "custom_day": "monday",
            "custom_time": "01:30",
            "direction": "EXPORT",
            "do_not_over_write_latest_data": "false",
            "ignore_threshold": "3",
            "perform_action": SEED_PERFORM_ACTION,
            "since_last_look_up": "false",
            "additional_criteria": "true",
            "property_name": "",
        },
        "additional_criteria_details": [
            {"group_condition": "AND", "rules": [
                {"field_name": "FIELD_NAME_1", "operator": "EQUALS", "value": "VALUE_1",
                 "condition": "AND"}]},
            {"group_condition": "OR", "rules": [
                {"field_name": "FIELD_NAME_2", "operator": "HAS_VALUE", "condition": "OR"},
                {"field_name": "FIELD_NAME_3", "operator": "CONTAINS", "value": "STRING_VALUE",
                 "condition": "AND"}]},
            {"group_condition": "AND", "rules": [
                {"field_name": "FIELD_NAME_4", "operator": "DOES_NOT_HAVE_VALUE", "condition": "AND"},
                {"field_name": "FIELD_NAME_5", "operator": "EQUALS", "value": "VALUE_2",
                 "condition": "AND"}]},
        ],
    }
}

CONFIGURATION = {
    "account": {
        "export": {
            "enabled": "true",
            "default_account_receivable": "RECEIVABLE_ACCOUNT_NAME",
            "account_receivable_mapping": {"enabled": "true", "mappings": [
                {"source": "SOURCE_LABEL_1", "target": "TARGET_LABEL_1"},
                {"source": "SOURCE_LABEL_2", "target": "TARGET_LABEL_2"}]},
            "default_account_payable": "PAYABLE_ACCOUNT_NAME",
            "account_payable_mapping": {"enabled": "true", "mappings": [
                {"source": "SOURCE_LABEL_3", "target": "TARGET_LABEL_3"},
                {"source": "SOURCE_LABEL_4", "target": "TARGET_LABEL_4"}]},
            "default_tax": None,
            "tax_mapping": {"enabled": "false", "mappings": []},
            "xero_account_number_field": "ACCOUNT_NUMBER_FIELD_NAME",
            "sync_to_xero": "true",
        },
        "import": {
            "enabled": "true",
            "default_account_receivable": "RECEIVABLE_ACCOUNT_NAME_IMPORT",
            "account_receivable_mapping": {"enabled": "true", "mappings": [
                {"source": "SOURCE_LABEL_5", "target": "TARGET_LABEL_5"},
                {"source": "SOURCE_LABEL_6", "target": "TARGET_LABEL_6"}]},
            "default_account_payable": "PAYABLE_ACCOUNT_NAME_IMPORT",
            "account_payable_mapping": {"enabled": "true", "mappings": [
                {"source": "SOURCE_LABEL_7", "target": "TARGET_LABEL_7"},
                {"source": "SOURCE_LABEL_8", "target": "TARGET_LABEL_8"}]},
            "xero_account_id_field": "ACCOUNT_ID_FIELD_NAME",
        },
    },
    "transaction": {
        "invoice": {
            "export": {
                "enabled": "true",
                "default_sales_revenue": "SALES_REVENUE_ACCOUNT",
                "sales_revenue_mapping": {"enabled": "true", "mappings": [
                    {"source": "SALES_SOURCE_LABEL_1", "target": "SALES_TARGET_LABEL_1"},
                    {"source": "SALES_SOURCE_LABEL_2", "target": "SALES_TARGET_LABEL_2"}]},
                "xero_invoice_number_field": "INVOICE_NUMBER_FIELD_NAME",
                "sync_to_xero": "true",
            }
        }
    },
}

CONNECTION_KEYS = ["status", "uuid", "integration_partner", "remote_instance_id", "remote_instance_name",
                   "client_id", "client_secret", "access_token", "refresh_token"]
PARTNER_FUNCTION_KEYS = ["uuid", "name", "description", "direction", "event_name", "provider_name",
                         "object_name", "mapping_id", "enabled", "pre_run_script_id", "post_run_script_id",
                         "tag", "created", "updated", "object_mapping"]
AUTOMATION_KEYS = ["check_on", "check_on_minutes", "additional_criteria", "applies_to", "applies_to_function",
                   "automation_type", "code", "custom_day", "custom_day_time", "custom_time", "description",
                   "direction", "display_name", "name", "perform_function", "provider", "status", "uuid",
                   "trigger_condition_text", "performActionText", "checkOnText"]
RUN_KEYS = ["uuid", "automation_uuid", "scheduled_for", "trigger", "status", "reason", "records_fetched",
            "records_matched", "records_sent", "attempts", "started_at", "finished_at", "duration_ms",
            "error", "budget_wait_ms", "throttled", "resume_at"]
PAGINATION_KEYS = ["records", "limit", "offset", "previous_page", "next_page"]


def automation_payload(perform_action: str, **details: Any) -> dict[str, Any]:
    """The seed 000 automation body naming `perform_action`, with some details replaced."""
    body = copy.deepcopy(AUTOMATION)
    body["integration"]["automation_details"].update(perform_action=perform_action, **details)
    return body
