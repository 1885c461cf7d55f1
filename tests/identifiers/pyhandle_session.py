"""Run inside pyhandle's own virtualenv (see test_ids_pyhandle.py): drives RESTHandleClient against
the platform given as argv[1] and prints one JSON object of what it saw."""

import json
import sys

from pyhandle.client.resthandleclient import RESTHandleClient
from pyhandle.handleexceptions import HandleAlreadyExistsException, HandleAuthenticationError

base, user, password, device = sys.argv[1:5]
out = {}
reader = RESTHandleClient.instantiate_for_read_access(base, HTTPS_verify=False)
out["device"] = reader.retrieve_handle_record(device)
out["device_url"] = reader.get_value_from_handle(device, "URL")
out["missing"] = reader.retrieve_handle_record_json("0.TEST/device.nope")

writer = RESTHandleClient.instantiate_with_username_and_password(base, user, password, HTTPS_verify=False)
handle = "0.TEST/part.pyhandle.1"
out["registered"] = writer.register_handle(
    handle, "http://127.0.0.1:8080/parts/1", checksum="abc123", machine="cnc-1"
)
try:
    writer.register_handle(handle, "http://elsewhere")
except HandleAlreadyExistsException:
    out["second_register"] = "already exists"
writer.modify_handle_value(handle, machine="cnc-2")
out["after_modify"] = reader.retrieve_handle_record(handle)
out["admin"] = [v for v in reader.retrieve_handle_record_json(handle)["values"] if v["type"] == "HS_ADMIN"]
out["deleted"] = writer.delete_handle(handle)
out["after_delete"] = reader.retrieve_handle_record_json(handle)

intruder = RESTHandleClient.instantiate_with_username_and_password(
    base, user, "not-a-token", HTTPS_verify=False
)
try:
    intruder.register_handle("0.TEST/part.pyhandle.2", "http://x")
except HandleAuthenticationError:
    out["intruder"] = "refused"
print(json.dumps(out))
