"""The official Exsited Python SDK (exsited==1.0.40) as a real client of the API served by uvicorn.

Limits of the SDK itself (documented in the README): its DTO loader turns response keys from snake to
camel case by lower-casing them first, so the seed's camelCase keys `performActionText` and
`checkOnText` never reach its DTOs; and its configuration read DTO models Xero settings, not the
seed 001 document, so those keys are dropped on the way in (the raw JSON carries them).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import uvicorn
from exsited.common.ab_exception import ABException
from exsited.common.sdk_conf import SDKConfig
from exsited.exsited.auth.dto.token_dto import RequestTokenDTO
from exsited.exsited.integration.dto import integration_dto as dto
from exsited.exsited.integration.integration import Integration
from exsited.http.file_token_manager import FileTokenManager
from sqlalchemy.orm import Session

from api.main import app
from tests.api import payloads
from tests.api.conftest import environment
from tests.conftest import TEST_API_TOKEN


@pytest.fixture(scope="module")
def base_url(database_url: str, redis_url: str) -> Iterator[str]:
    """The API under uvicorn on a free loopback port, for the module's tests."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


def _token_dto(base_url: str) -> RequestTokenDTO:
    return RequestTokenDTO(grantType="client_credentials", clientId="sdk-client", clientSecret="sdk-secret",
                           redirectUri="", exsitedUrl=base_url)


@pytest.fixture()
def sdk(base_url: str, db: Session, tmp_path: Path) -> Integration:
    """The SDK with the bearer token handed to it through its own FileTokenManager."""
    SDKConfig.ENABLE_JSON_CONVERSION = False
    manager = FileTokenManager(str(tmp_path / "token.json"))
    manager.set_token(TEST_API_TOKEN, "unused", 3600)
    return Integration(_token_dto(base_url), file_token_mgr=manager)


def _connection_request() -> dto.IntegrationConnectionCreateRequestDTO:
    c = payloads.CONNECTION
    return dto.IntegrationConnectionCreateRequestDTO(
        provider="Xero", remoteInstanceId=c["remote_instance_id"],
        remoteInstanceName=c["remote_instance_name"], integrationClientId=c["integration_client_id"],
        integrationClientSecret=c["integration_client_secret"],
        integrationAccessToken=c["integration_access_token"],
        integrationRefreshToken=c["integration_refresh_token"], tokenType="Bearer", expiresIn="2026-12-31",
        apiDomain=c["api_domain"], supportingFields=c["supporting_fields"], requireAuthentication=True,
        companyName=c["company_name"],
    )


def _automation_request(perform_action: str, check_on: str = "8 hours") -> dto.AutomationRequestDTO:
    d = payloads.AUTOMATION["integration"]["automation_details"]
    details = dto.AutomationDetailsDTO(
        name=d["name"], displayName=d["display_name"], code=d["code"], descriptionEnabled="true",
        description=d["description"], anotherAutomation=d["another_automation"], appliesTo="supplier",
        appliesToFunction="new", automationType="timerBased", direction="IMPORT", checkOn=check_on,
        customDay="thursday", customTime="06:45:23", doNotOverWriteLatestData="true", ignoreThreshold="1",
        performAction=perform_action, sinceLastLookUp="true", additionalCriteria="true", propertyName="",
    )
    rules = [dto.CriteriaRuleDTO(fieldName="AccountNumber", operator="EQUALS", value="1QKGUL",
                                 condition="AND"),
             dto.CriteriaRuleDTO(fieldName="ContactID", operator="DOES_NOT_HAVE_VALUE", condition="AND")]
    group = dto.AdditionalCriteriaDTO(groupCondition="AND", rules=rules)
    return dto.AutomationRequestDTO(integration=dto.IntegrationDTO(automationDetails=details,
                                                                   additionalCriteriaDetails=[group]))


def _pf_request(name: str, direction: str = "IMPORT") -> dto.PartnerFunctionRequestDTO:
    f = payloads.PARTNER_FUNCTION["partner_function"]
    return dto.PartnerFunctionRequestDTO(partnerFunction=dto.PartnerFunctionDTO(
        name=name, direction=direction, description=f["description"], objectName=f["object_name"],
        objectMapping=f["object_mapping"], eventName=f["event_name"], tag=f["tag"]))


def test_connection_lifecycle(sdk: Integration) -> None:
    created = sdk.create_connection(_connection_request())
    conn = created.integration.integrationConnection
    assert (conn.status, conn.integrationPartner, conn.clientId) == ("ACTIVE", "XERO", "qbclientid123")
    assert conn.clientSecret == "****t456" and conn.remoteInstanceId == "tenant-9876543210"
    assert sdk.disable_connection(conn.uuid).message == "XERO integration has been disable successfully"
    assert sdk.enable_connection(conn.uuid).message == "XERO integration has been enable successfully"
    listing = sdk.connection_list()
    assert [c.uuid for c in listing.integrationConnection] == [conn.uuid]
    assert listing.pagination.records == 1 and listing.pagination.nextPage is None
    assert sdk.get_connection_by_id(conn.uuid).integrationConnection.status == "ACTIVE"
    assert sdk.connection_delete(conn.uuid) == {"message": "XERO integration has been deleted successfully"}
    assert sdk.connection_list().integrationConnection == []


def test_partner_functions(sdk: Integration) -> None:
    conn = sdk.create_connection(_connection_request()).integration.integrationConnection
    pf = sdk.create_partner_function(conn.uuid, _pf_request("PartnerRole")).partnerFunction
    assert (pf.name, pf.enabled, pf.providerName, pf.objectMapping) == ("PartnerRole", "true", "XERO",
                                                                        "customer_to_partner")
    updated = sdk.update_partner_function(conn.uuid, pf.uuid, _pf_request("Renamed", "EXPORT"))
    assert isinstance(updated, dto.PartnerFunctionUpdateResponseDTO)
    assert (updated.uuid, updated.name, updated.direction) == (pf.uuid, "Renamed", "EXPORT")
    disabled = sdk.disable_partner_function(conn.uuid, pf.uuid)
    assert disabled.message == "Partner function has been disabled successfully"
    assert sdk.partner_function_details(conn.uuid, pf.uuid).partnerFunction.enabled == "false"
    enabled = sdk.enable_partner_function(conn.uuid, pf.uuid)
    assert enabled.message == "Partner function has been enabled successfully"
    listing = sdk.partner_function_list(conn.uuid)
    assert [p.name for p in listing.partnerFunctions] == ["Renamed"] and listing.pagination.records == 1


def test_automations(sdk: Integration) -> None:
    conn = sdk.create_connection(_connection_request()).integration.integrationConnection
    pf = sdk.create_partner_function(conn.uuid, _pf_request("PartnerRole")).partnerFunction
    created = sdk.create_automation(conn.uuid, _automation_request("PartnerRole")).integrationAutomation
    assert (created.checkOn, created.checkOnMinutes, created.customDayTime) == ("8 hours", "480",
                                                                                "thursday 06:45:23")
    assert created.performFunction == pf.uuid and created.provider == "XERO" and created.status == "ACTIVE"
    assert created.triggerConditionText == "((AccountNumber equals '1QKGUL') AND (ContactID has no value))"
    updated = sdk.update_automation(conn.uuid, created.uuid, _automation_request(pf.uuid, "4 hours"))
    assert updated.integrationAutomation.checkOnMinutes == "240"
    listing = sdk.automation_list(conn.uuid)
    assert [a.uuid for a in listing.integrationAutomations] == [created.uuid]
    assert listing.pagination.records == 1
    details = sdk.automation_details(conn.uuid, created.uuid).integrationAutomation
    assert details.checkOn == "4 hours" and details.additionalCriteria == "true"
    with pytest.raises(ABException) as rejected:
        sdk.create_automation(conn.uuid, _automation_request(pf.uuid, "0 hours"))
    assert any("check_on" in str(e) or "0 hours" in str(e) for e in rejected.value.errors)


def test_configuration(sdk: Integration, base_url: str) -> None:
    conn = sdk.create_connection(_connection_request()).integration.integrationConnection
    mapping = dto.AccountMappingDTO(enabled="true", mappings=[dto.MappingDTO(source="S1", target="T1")])
    request = dto.IntegrationConnectionConfigRequestDTO(
        account=dto.AccountDTO(
            export=dto.AccountImportExportDTO(enabled="true", accountReceivableMapping=mapping),
            import_=dto.AccountImportExportDTO(enabled="false")),
        transaction=dto.TransactionDTO(invoice=dto.InvoiceDTO(export=dto.InvoiceExportDTO(syncToXero="true"))))
    response = sdk.update_integration_configuration(conn.uuid, request)
    assert response.message == "Configuration has been updated successfully"
    read = sdk.integration_configuration(conn.uuid)
    assert isinstance(read, dto.XeroIntegrationConfigurationResponseDTO)
    assert read.integration.account is not None
    raw = requests.get(f"{base_url}api/v3/integration/{conn.uuid}/configuration",
                       headers={"Authorization": f"Bearer {TEST_API_TOKEN}"}, timeout=10).json()
    assert raw["integration"]["account"]["import"] == {"enabled": "false"}
    assert raw["integration"]["account"]["export"]["account_receivable_mapping"]["mappings"] == [
        {"source": "S1", "target": "T1"}]
    assert raw["integration"]["transaction"] == {"invoice": {"export": {"sync_to_xero": "true"}}}


def test_the_sdk_logs_in_through_the_token_exchange(base_url: str, db: Session) -> None:
    SDKConfig.ENABLE_JSON_CONVERSION = False
    with environment(API_CLIENT_ID="sdk-client", API_CLIENT_SECRET="sdk-secret"):
        sdk = Integration(_token_dto(base_url))  # no token: the first call gets 401, the SDK logs in, retries
        created = sdk.create_connection(_connection_request())
        assert created.integration.integrationConnection.integrationPartner == "XERO"
        assert sdk.rest_token.accessToken == TEST_API_TOKEN
    with environment(API_CLIENT_ID="sdk-client", API_CLIENT_SECRET="other"), pytest.raises(ABException):
        Integration(_token_dto(base_url)).connection_list()
