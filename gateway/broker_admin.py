"""Live broker account management through Mosquitto's dynamic-security control API."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt

from gateway.mqttclient import service_client
from gateway.schema import ALL_SITES_FILTER, INTERNAL_FILTER, Channel, topic_for
from kernel.endpoint import MqttEndpoint

logger = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
PIPELINE_ROLE = "eldercare-pipeline"
DEVICE_ROLE_PREFIX = "device:"


class BrokerAdminError(RuntimeError):
    """The broker refused or did not answer an account command."""


def device_acls(site: str, device_id: str) -> list[dict[str, Any]]:
    """ACL entries that confine a device to its own topics."""
    acls: list[dict[str, Any]] = [
        {"acltype": "publishClientSend", "topic": topic_for(site, device_id, ch), "allow": True}
        for ch in (Channel.TELEMETRY, Channel.EVENT, Channel.STATUS)
    ]
    cmd = topic_for(site, device_id, Channel.CMD)
    acls.append({"acltype": "subscribeLiteral", "topic": cmd, "allow": True})
    acls.append({"acltype": "publishClientReceive", "topic": cmd, "allow": True})
    return acls


def pipeline_acls() -> list[dict[str, Any]]:
    """ACL entries for the platform's service account: read all devices, write commands, and
    publish/subscribe on the platform-internal topics (live alert bus)."""
    return [
        {"acltype": "subscribePattern", "topic": ALL_SITES_FILTER, "allow": True},
        {"acltype": "subscribePattern", "topic": "eldercare/v1/+/+/+", "allow": True},
        {"acltype": "publishClientReceive", "topic": ALL_SITES_FILTER, "allow": True},
        {"acltype": "publishClientSend", "topic": "eldercare/v1/+/+/cmd", "allow": True},
        {"acltype": "subscribePattern", "topic": INTERNAL_FILTER, "allow": True},
        {"acltype": "publishClientSend", "topic": INTERNAL_FILTER, "allow": True},
        {"acltype": "publishClientReceive", "topic": INTERNAL_FILTER, "allow": True},
    ]


class BrokerAdmin:
    """A short-lived admin connection that sends dynamic-security commands and awaits replies."""

    def __init__(self, endpoint: MqttEndpoint, timeout: float = 10.0) -> None:
        self._endpoint = endpoint
        self._timeout = timeout
        self._client = service_client(endpoint, f"eldercare-admin-{uuid.uuid4().hex[:8]}")
        self._client.on_message = self._on_message
        self._connected = threading.Event()
        self._client.on_connect = self._on_connect
        self._lock = threading.Lock()
        self._reply = threading.Event()
        self._responses: list[dict[str, Any]] = []

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        if reason.is_failure:
            logger.error("broker admin login refused: %s", reason)
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)
        self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._responses = json.loads(msg.payload).get("responses", [])
        except ValueError:
            self._responses = [{"error": "unreadable response"}]
        self._reply.set()

    def __enter__(self) -> BrokerAdmin:
        self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(self._timeout):
            self.close()
            raise BrokerAdminError(
                f"could not log in to the broker at {self._endpoint.host}:{self._endpoint.port}"
                " as the dynamic-security admin"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def run(self, commands: list[dict[str, Any]], ok_errors: tuple[str, ...] = ()
            ) -> list[dict[str, Any]]:
        """Send commands in one control message; raise on any error not in `ok_errors`."""
        with self._lock:
            self._reply.clear()
            # A subscription ack races with our first publish; QoS 1 publish after SUBACK is
            # guaranteed because paho sends in order on one connection.
            info = self._client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)
            info.wait_for_publish(self._timeout)
            if not self._reply.wait(self._timeout):
                raise BrokerAdminError("the broker did not answer the account command")
            responses = self._responses
        for resp in responses:
            err = resp.get("error")
            if err and not any(ok in err for ok in ok_errors):
                raise BrokerAdminError(f"{resp.get('command')}: {err}")
        return responses

    def add_device(self, device_id: str, site: str, password: str) -> None:
        """Create (or replace) a device account confined to its own topics."""
        role = DEVICE_ROLE_PREFIX + device_id
        self.run([{"command": "deleteClient", "username": device_id},
                  {"command": "deleteRole", "rolename": role}], ok_errors=("not found",))
        self.run([
            {"command": "createRole", "rolename": role, "acls": device_acls(site, device_id)},
            {"command": "createClient", "username": device_id, "password": password,
             "clientid": device_id, "roles": [{"rolename": role, "priority": 0}]},
        ])

    def add_devices(self, devices: list[tuple[str, str, str]], chunk: int = 40) -> None:
        """Create many device accounts (device_id, site, password) in few round trips."""
        for start in range(0, len(devices), chunk):
            part = devices[start:start + chunk]
            cmds: list[dict[str, Any]] = []
            for device_id, site, password in part:
                role = DEVICE_ROLE_PREFIX + device_id
                cmds += [
                    {"command": "createRole", "rolename": role,
                     "acls": device_acls(site, device_id)},
                    {"command": "createClient", "username": device_id, "password": password,
                     "clientid": device_id, "roles": [{"rolename": role, "priority": 0}]},
                ]
            self.run(cmds, ok_errors=("already exists",))

    def remove_device(self, device_id: str) -> None:
        """Revoke a device account; its open connection is dropped by the broker."""
        self.run([{"command": "deleteClient", "username": device_id},
                  {"command": "deleteRole", "rolename": DEVICE_ROLE_PREFIX + device_id}],
                 ok_errors=("not found",))

    def ensure_service_account(self, username: str, password: str) -> None:
        """Create or update the pipeline service account and its role.

        Receiving is denied unless a role allows it. The plugin's default allows it and relies
        on refusing SUBSCRIBEs, but with the device acl_file loaded (record 0006) Mosquitto
        2.0 grants every SUBSCRIBE before asking the plugin, so only the delivery check is
        left to confine the plugin's own clients."""
        self.run([{"command": "setDefaultACLAccess",
                   "acls": [{"acltype": "publishClientReceive", "allow": False}]}])
        self.run([{"command": "createRole", "rolename": PIPELINE_ROLE, "acls": pipeline_acls()}],
                 ok_errors=("already exists",))
        # An existing role (older release) gains ACL entries added since.
        self.run([{"command": "addRoleACL", "rolename": PIPELINE_ROLE, **acl}
                  for acl in pipeline_acls()], ok_errors=("already exists",))
        self.run([{"command": "createClient", "username": username, "password": password,
                   "roles": [{"rolename": PIPELINE_ROLE, "priority": 0}]}],
                 ok_errors=("already exists",))
        self.run([{"command": "setClientPassword", "username": username, "password": password}])

