#!/usr/bin/env bash
# Make the synthetic call-center recordings in samples/ (committed; re-run only to change them).
#
#   bash samples/make_samples.sh            # or: make samples
#
# Needs espeak-ng and sox (with libsox-fmt-mp3 for the MP3). Output is deterministic for a
# given espeak-ng/sox version: fixed voices and speed, `sox -R` (repeatable dither seed).
#
# What it writes, next to this script:
#   call_stereo.wav  stereo, agent on LEFT (channel 0), customer on RIGHT (channel 1),
#                    16 kHz G.711 mu-law WAV, the usual call-recorder format (half the size
#                    of 16-bit PCM, which keeps the samples under 1 MB in all)
#   call_stereo.mp3  another stereo call (agent left, customer right), 16 kHz MP3, 48 kbit/s
#   call_mono.wav    both voices on one channel, 16 kHz 16-bit PCM WAV
#   phrases.txt      every sentence spoken, one per line: the emulator's custom model is
#                    built from it (`--custom-model samples=samples/phrases.txt`)
#   expected.json    per file: channel count, the sentences of each channel in order, and
#                    each turn's speaker, voice, channel and time (start/end in seconds)
#   README.md        the same, for people
#
# Why 16 kHz: pocketsphinx's US-English acoustic model is wide-band; at 8 kHz (telephony
# band) it loses a quarter of the words of these voices, at 16 kHz it gets them nearly all.
# While one party speaks the other channel is silent, as on a real two-channel recording.
# The MP3's times are later by the encoder's delay (a few tens of milliseconds).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for tool in espeak-ng sox soxi awk; do
  command -v "$tool" >/dev/null || { echo "make_samples.sh: $tool is required (apt-get install espeak-ng sox libsox-fmt-mp3)" >&2; exit 1; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

RATE=16000
LEAD_S=0.5   # silence before the first turn
GAP_S=0.8    # silence between turns: longer than the recogniser's 0.5 s phrase gap
TAIL_S=0.5   # silence after the last turn
SPEED=165    # words per minute (espeak-ng's default is 175)

# Turns: "speaker|voice|text". Lower case, no punctuation, every word in pocketsphinx's
# US-English dictionary, so the recognised lexical text can equal the script exactly.
CALL_STEREO_WAV=(
  "agent|en-us+f2|thank you for calling customer support my name is sarah how can i help you today"
  "customer|en-us+m3|hi i was charged twice for my internet bill this month"
  "agent|en-us+f2|i am sorry about that i will refund the duplicate charge today"
  "customer|en-us+m3|that is great thank you very much"
)
CALL_STEREO_MP3=(
  "agent|en-us|good morning this is the delivery help line"
  "customer|en-us+f4|my package did not arrive yesterday"
  "agent|en-us|let me check the tracking number for you"
  "customer|en-us+f4|the order number is eight three one"
  "agent|en-us|it will arrive tomorrow before noon"
)
CALL_MONO_WAV=(
  "agent|en-us+f2|hello you are speaking with the bank how may i help you"
  "customer|en-us|i would like to reset my online password"
  "agent|en-us+f2|i have sent a reset link to your email"
)

# synth VOICE TEXT OUT: one utterance as mono 16-bit PCM at $RATE, espeak-ng's own leading
# and trailing silence trimmed so that the times written to expected.json are the speech's.
synth() {
  espeak-ng -v "$1" -s "$SPEED" -w "$work/raw.wav" "$2"
  sox -R "$work/raw.wav" -r "$RATE" -b 16 "$3" \
    silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse
}

json_files=()     # one `"name": {...}` entry per call, for expected.json
readme_rows=()    # markdown lines, for README.md
phrases=()        # every sentence, in order of appearance, no duplicates

# make_call FILE CHANNELS TURNS_ARRAY_NAME [sox output options...]
make_call() {
  local file="$1" channels="$2"
  local -n turns="$3"
  shift 3
  local parts=() turns_json=() cursor="$LEAD_S" i=0 n="${#turns[@]}"
  local -a per_channel=("" "")
  readme_rows+=("" "### \`$file\` ($channels channel$(if [ "$channels" = 2 ]; then echo s; fi))" ""
    "| from (s) | to (s) | channel | speaker | voice | text |" "|---|---|---|---|---|---|")
  for turn in "${turns[@]}"; do
    local speaker="${turn%%|*}" rest="${turn#*|}"
    local voice="${rest%%|*}" text="${rest#*|}"
    local channel=0 remix="1 0"
    if [ "$channels" = 2 ] && [ "$speaker" = customer ]; then channel=1; remix="0 1"; fi
    if [ "$channels" = 1 ]; then remix="1"; fi
    synth "$voice" "$text" "$work/speech.wav"
    local dur; dur="$(soxi -D "$work/speech.wav")"
    local pad_before=0 pad_after="$GAP_S"
    if [ "$i" = 0 ]; then pad_before="$LEAD_S"; fi
    if [ "$i" = "$((n - 1))" ]; then pad_after="$TAIL_S"; fi
    sox -R "$work/speech.wav" "$work/part$i.wav" remix $remix pad "$pad_before" "$pad_after"
    parts+=("$work/part$i.wav")
    local start end
    start="$(awk -v c="$cursor" 'BEGIN { printf "%.2f", c }')"
    end="$(awk -v c="$cursor" -v d="$dur" 'BEGIN { printf "%.2f", c + d }')"
    cursor="$(awk -v c="$cursor" -v d="$dur" -v g="$pad_after" 'BEGIN { printf "%.4f", c + d + g }')"
    turns_json+=("{\"channel\": $channel, \"speaker\": \"$speaker\", \"voice\": \"$voice\", \"start_s\": $start, \"end_s\": $end, \"text\": \"$text\"}")
    per_channel[channel]+="${per_channel[channel]:+, }\"$text\""
    readme_rows+=("| $start | $end | $channel | $speaker | $voice | $text |")
    local seen=0
    for p in "${phrases[@]}"; do [ "$p" = "$text" ] && seen=1; done
    if [ "$seen" = 0 ]; then phrases+=("$text"); fi
    i=$((i + 1))
  done
  sox -R "${parts[@]}" "$@" "$here/$file"
  local total sentences
  total="$(soxi -D "$here/$file")"
  sentences="[${per_channel[0]}]"
  if [ "$channels" = 2 ]; then sentences="[${per_channel[0]}], [${per_channel[1]}]"; fi
  local IFS=,
  json_files+=("    \"$file\": {
      \"channels\": $channels,
      \"sample_rate\": $RATE,
      \"duration_s\": $(awk -v t="$total" 'BEGIN { printf "%.2f", t }'),
      \"sentences\": [$sentences],
      \"turns\": [
        $(printf '%s\n' "${turns_json[@]}" | paste -sd, - | sed 's/},{/},\n        {/g')
      ]
    }")
  unset IFS
}

make_call call_stereo.wav 2 CALL_STEREO_WAV -e mu-law
make_call call_stereo.mp3 2 CALL_STEREO_MP3 -C 48
make_call call_mono.wav 1 CALL_MONO_WAV -b 16

printf '%s\n' "${phrases[@]}" >"$here/phrases.txt"
{
  echo "{"
  echo "  \"files\": {"
  for k in "${!json_files[@]}"; do
    sep=","
    if [ "$k" = "$((${#json_files[@]} - 1))" ]; then sep=""; fi
    echo "${json_files[$k]}$sep"
  done
  echo "  }"
  echo "}"
} >"$here/expected.json"
{
  echo "# Sample calls"
  echo
  echo "Synthetic call-center recordings made by \`make_samples.sh\` (espeak-ng + sox); see the"
  echo "comment at its top for formats and why. In stereo files the agent is on the left channel"
  echo "(0) and the customer on the right (1); the other channel is silent while one party speaks."
  echo "\`phrases.txt\` lists every sentence (the emulator's custom model is built from it) and"
  echo "\`expected.json\` has the tables below in machine-readable form. Times are approximate"
  echo "(the MP3's are later by the encoder delay)."
  printf '%s\n' "${readme_rows[@]}"
} >"$here/README.md"
ls -l "$here"
