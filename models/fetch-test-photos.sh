#!/usr/bin/env bash
# Fetches the pinned test photos (PyPI sdist face_recognition==1.3.0, MIT repository) into
# .cache/test-photos/ and checks their sha256. Third-party photos: never commit them.
# Exit 0 when the photos are there; 1 when the fetch failed (tests then skip loudly).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.cache/test-photos
SDIST_SHA=5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec
mkdir -p .cache/sdist "$DEST"
SUMS="0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6  obama.jpg
a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6  obama2.jpg
76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3  obama3.jpg
3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c  biden.jpg
c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117  obama_partial_face.jpg"
if (cd "$DEST" && echo "$SUMS" | sha256sum -c --quiet - >/dev/null 2>&1); then exit 0; fi
SD=.cache/sdist/face_recognition-1.3.0.tar.gz
if [ ! -f "$SD" ]; then
  PIP=$( [ -x .venv/bin/pip ] && echo .venv/bin/pip || echo "python3 -m pip" )
  $PIP download -q --disable-pip-version-check --no-deps --no-binary :all: face_recognition==1.3.0 -d .cache/sdist
fi
echo "$SDIST_SHA  $SD" | sha256sum -c --quiet -
tar xzf "$SD" -C "$DEST" --strip-components=3 \
  face_recognition-1.3.0/tests/test_images/obama.jpg face_recognition-1.3.0/tests/test_images/obama2.jpg \
  face_recognition-1.3.0/tests/test_images/obama3.jpg face_recognition-1.3.0/tests/test_images/biden.jpg \
  face_recognition-1.3.0/tests/test_images/obama_partial_face.jpg
(cd "$DEST" && echo "$SUMS" | sha256sum -c --quiet -)
