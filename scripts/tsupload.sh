#!/usr/bin/env bash
# Post-rotate upload for tcpdump, the original product's recipe against a pcap-defense server:
#
#   sudo tcpdump -tt -n -G 600 -w 'tspcap.%s' -Z "$(whoami)" -z /path/to/scripts/tsupload.sh
#
# tcpdump runs this with the rotated capture as $1. It converts the capture to `tcpdump -n -tt` text,
# uploads it with the logUploadCreate GraphQL multipart mutation (size and MD5 sent, so the server checks
# that what arrived is what was sent), and deletes the capture once the server has stored the upload.
#
# Environment (tcpdump -z passes its own environment on: use `sudo -E` or a wrapper that exports these):
#   PCAP_DEFENSE_KEY        API key (an UPLOADER key is enough)                    required
#   PCAP_DEFENSE_DEVICE     nickname of the device the capture comes from         required
#   PCAP_DEFENSE_URL        GraphQL endpoint        default http://localhost:4000/graphql
#   PCAP_DEFENSE_KEEP_PCAP  1: keep the rotated capture after a successful upload
#
# Fails (non-zero, reason on stderr) when the conversion fails, the server cannot be reached, answers
# with a non-2xx status or with userErrors; the capture is then kept so it can be uploaded again.
set -euo pipefail

me=${0##*/}
die() {
  printf '%s: %s\n' "$me" "$*" >&2
  exit 1
}

[[ $# -eq 1 && -n $1 ]] || die "usage: $me ROTATED_PCAP (run by tcpdump -z)"
pcap=$1
key=${PCAP_DEFENSE_KEY:-}
device=${PCAP_DEFENSE_DEVICE:-}
url=${PCAP_DEFENSE_URL:-http://localhost:4000/graphql}
[[ -n $key ]] || die "set PCAP_DEFENSE_KEY to an API key"
[[ -n $device ]] || die "set PCAP_DEFENSE_DEVICE to the device's nickname"
[[ -r $pcap ]] || die "cannot read $pcap"

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/tsupload.XXXXXX")
trap 'rm -rf -- "$tmpdir"' EXIT
name=${pcap##*/}
# The file name travels in curl's -F syntax, where ; and " are special.
text=$tmpdir/${name//[^A-Za-z0-9._-]/_}.txt
answer=$tmpdir/answer.json

# tcpdump -r always prints "reading from file ..." on stderr: show its stderr only when it fails.
if ! tcpdump -n -tt -r "$pcap" >"$text" 2>"$tmpdir/tcpdump.err"; then
  cat "$tmpdir/tcpdump.err" >&2
  die "tcpdump could not convert $pcap"
fi

size=$(wc -c <"$text")
size=${size//[[:space:]]/}
if [[ $size -eq 0 ]]; then
  # Nothing was captured in this rotation: the server would refuse an empty file.
  printf '%s: %s has no packets; nothing to upload\n' "$me" "$pcap" >&2
  [[ ${PCAP_DEFENSE_KEEP_PCAP:-0} == 1 ]] || rm -f -- "$pcap"
  exit 0
fi
if command -v md5sum >/dev/null; then
  md5=$(md5sum <"$text")
elif command -v md5 >/dev/null; then
  md5=$(md5 -q <"$text")
else
  md5=$(openssl md5 -r <"$text")
fi
md5=${md5%% *}

json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

# shellcheck disable=SC2016 # $input is a GraphQL variable, not a shell one.
query='mutation($input: LogUploadCreateInput!) { logUploadCreate(input: $input) { logUpload { id status } duplicate userErrors { code field message } } }'
operations=$(printf '{"query":%s,"variables":{"input":{"deviceNickname":%s,"file":null,"size":%s,"md5":"%s"}}}' \
  "$(json_string "$query")" "$(json_string "$device")" "$size" "$md5")

# --form-string: the values are sent as they are (no @file or ;type= interpretation).
if ! status=$(curl -sS -o "$answer" -w '%{http_code}' \
  -H "Authorization: Bearer $key" \
  -H 'Apollo-Require-Preflight: true' \
  --form-string "operations=$operations" \
  --form-string 'map={"0":["variables.input.file"]}' \
  -F "0=@$text;type=text/plain" \
  "$url"); then
  die "cannot reach $url; $pcap kept"
fi
body=$(cat "$answer")
if [[ $status != 2?? ]]; then
  die "upload of $pcap refused (HTTP $status): $body; $pcap kept"
fi
# Apollo answers compact JSON: an accepted upload has an empty userErrors list and an upload ID.
if [[ $body != *'"userErrors":[]'* || $body != *'"logUpload":{"id":"'* ]]; then
  die "upload of $pcap refused: $body; $pcap kept"
fi

id=${body#*\"logUpload\":\{\"id\":\"}
id=${id%%\"*}
duplicate=false
[[ $body == *'"duplicate":true'* ]] && duplicate=true
printf '%s: %s uploaded (%s bytes): id %s, duplicate %s\n' "$me" "$pcap" "$size" "$id" "$duplicate"
[[ ${PCAP_DEFENSE_KEEP_PCAP:-0} == 1 ]] || rm -f -- "$pcap"
