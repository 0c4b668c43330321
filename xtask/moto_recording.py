"""The emulator, recording every request it serves as one JSON line in
MOTO_RECORDER_FILEPATH (moto's own recorder), one request at a time: moto
appends from each request's thread without a lock, which can interleave long
lines. The recording is what infra/authz evaluates against the Terraform
plan's policies.

With GALLERY_SECRETS_FILE set, every secret the emulator hands out (KMS data
keys and decrypted plaintexts, Secrets Manager values) is also appended there,
one base64 or text value per line: the log scan (`cargo xtask test`) looks for
each of them in every log line the run wrote."""

import json
import os
import sys
import threading

from moto.moto_api._internal.recorder.models import Recorder
from moto.server import main

_lock = threading.Lock()
_record = Recorder._record_request


def _one_at_a_time(self, request, body=None):
    with _lock:
        _record(self, request, body)


Recorder._record_request = _one_at_a_time

_secrets_path = os.environ.get("GALLERY_SECRETS_FILE")
_secrets_lock = threading.Lock()


def _keep(value):
    if _secrets_path and isinstance(value, str) and value:
        with _secrets_lock, open(_secrets_path, "a", encoding="utf-8") as f:
            f.write(value.replace("\n", " ") + "\n")


def _capturing(cls, method, field):
    original = getattr(cls, method)

    def wrapper(self):
        response = original(self)
        body = response[-1] if isinstance(response, tuple) else response
        try:
            _keep(json.loads(body).get(field))
        except (TypeError, ValueError, AttributeError):
            pass
        return response

    setattr(cls, method, wrapper)


if _secrets_path:
    from moto.kms.responses import KmsResponse
    from moto.secretsmanager.responses import SecretsManagerResponse

    for _method in ("generate_data_key", "decrypt", "re_encrypt", "generate_random"):
        _capturing(KmsResponse, _method, "Plaintext")
    _capturing(SecretsManagerResponse, "get_secret_value", "SecretString")

if __name__ == "__main__":
    sys.exit(main())
