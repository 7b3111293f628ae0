#!/usr/bin/python3
"""Writes vectors.json: TEST keys (never used anywhere) and their hashes,
made by the real tools. See README.md. Run from this directory:

    apt-get install -y apache2-utils python3-passlib python3-django python3-argon2
    /usr/bin/python3 make_vectors.py > vectors.json
"""
import base64
import hashlib
import json
import secrets
import string
import subprocess

import django
from django.conf import settings

settings.configure(
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
    ]
)
django.setup()

from django.contrib.auth.hashers import BasePasswordHasher, make_password  # noqa: E402
from django.utils.crypto import constant_time_compare, get_random_string  # noqa: E402
from passlib.hash import argon2, django_pbkdf2_sha256  # noqa: E402

ALNUM = string.ascii_letters + string.digits


def key(prefix, n=32):
    return prefix + "".join(secrets.choice(ALNUM) for _ in range(n))


class Sha512ApiKeyHasher(BasePasswordHasher):
    """djangorestframework-api-key 3.0.0-3.1.0, crypto.Sha512ApiKeyHasher."""

    algorithm = "sha512"

    def salt(self):
        return ""

    def encode(self, password, salt):
        assert salt == ""
        return "%s$$%s" % (self.algorithm, hashlib.sha512(password.encode()).hexdigest())

    def verify(self, password, encoded):
        return constant_time_compare(encoded, self.encode(password, ""))


vectors = []


def add(name, scheme, prefix, k, h, tool):
    vectors.append({"name": name, "scheme": scheme, "prefix": prefix, "key": k, "hash": h, "tool": tool})


# bcrypt: Apache htpasswd, cost 10 ($2y$).
k = key("lg_bcrypt_01_")
out = subprocess.run(["htpasswd", "-nbB", "-C", "10", "test", k], check=True, capture_output=True, text=True).stdout
add("bcrypt-htpasswd-cost10", "bcrypt", k[:13], k, out.strip().split(":", 1)[1], "htpasswd -nbB -C 10")

# argon2id, PHC string: passlib 1.7.4 (argon2-cffi 21.1.0), its defaults m=102400,t=2,p=8, 16-byte hash.
k = key("lg_argon_01_")
add("argon2id-passlib", "argon2id", k[:12], k, argon2.using(type="ID").hash(k), "passlib.hash.argon2 type=ID")

# argon2id, Django's encoding "argon2$argon2id$...": Django 3.2 Argon2PasswordHasher (m=102400,t=2,p=8).
k = key("lg_argon_02_")
add("argon2id-django", "argon2id", k[:12], k, make_password(k, hasher="argon2"), "django make_password hasher=argon2")

# Django pbkdf2_sha256: Django 3.2 make_password (260,000 iterations).
k = key("lg_pbkdf_01_")
add("pbkdf2-django32", "django-pbkdf2-sha256", k[:12], k, make_password(k, hasher="pbkdf2_sha256"), "django 3.2 make_password")

# Django pbkdf2_sha256 at Django 5.2's 1,000,000 iterations: passlib's Django handler.
k = key("lg_pbkdf_02_")
add("pbkdf2-django52-iterations", "django-pbkdf2-sha256", k[:12], k,
    django_pbkdf2_sha256.using(rounds=1000000).hash(k), "passlib django_pbkdf2_sha256 rounds=1000000")

# djangorestframework-api-key 3.x: KeyGenerator: prefix of 8, secret of 32, "prefix.secret", sha512$$hex.
p = get_random_string(8)
k = p + "." + get_random_string(32)
add("drf-api-key-v3-sha512", "drf-api-key", p, k, make_password(k, hasher=Sha512ApiKeyHasher()),
    "djangorestframework-api-key 3.1.0 Sha512ApiKeyHasher via django make_password")

# djangorestframework-api-key 1.4-2.3: Django's default password hasher (pbkdf2_sha256) of "prefix.secret".
p = get_random_string(8)
k = p + "." + get_random_string(32)
add("drf-api-key-v2-pbkdf2", "drf-api-key", p, k, make_password(k), "djangorestframework-api-key 2.3.0 KeyGenerator.hash = django make_password")

# Unkey: base64(SHA-256(key)), the vector of Unkey's own test (internal/hash/src/sha256.test.ts) and one of ours.
add("unkey-upstream", "unkey-sha256-base64", "", "MVgWNsyPmv6VthC9moCNAPwS",
    "CptSN3vQ0shZLIsdT5c/tlpeFK/qqxY0R/aQNCfKhWs=", "Unkey's test vector")
k = key("lg_unkey_")
add("unkey-python", "unkey-sha256-base64", k[:9], k, base64.b64encode(hashlib.sha256(k.encode()).digest()).decode(),
    "python base64.b64encode(hashlib.sha256(key).digest())")

# plaintext
k = key("lg_plain_")
add("plaintext", "plaintext", k[:9], k, k, "the key itself")

print(json.dumps({"comment": "TEST keys and hashes only, never used by any system; made by make_vectors.py (see README.md)",
                  "versions": {"django": django.get_version(), "passlib": "1.7.4", "argon2-cffi": "21.1.0", "htpasswd": "Apache 2.4 (Debian 12)"},
                  "vectors": vectors}, indent=1))
