#!/usr/bin/env bash
# Makes a corpus of real audio files for tests and benchmarks: synthesized English speech in every
# format the server accepts, plus files it must reject. Needs espeak-ng, sox and ffmpeg (Debian);
# installs them when missing and running as root.
#
#   tests/corpus/make_corpus.sh OUT_DIR
#
# The tests run it when the corpus is missing (into target/corpus, or wherever HARK_CORPUS
# points); scripts/test.sh runs it up front.
#
# OUT_DIR/manifest.tsv lists every good file with ffprobe's view of it (the oracle):
#   file  format_name  codec  sample_rate  channels  duration_seconds  text_id  decoded_seconds
# (duration_seconds and decoded_seconds are explained where the manifest is written, below).
# OUT_DIR/texts.tsv lists the sentences spoken (text_id, text), for speech-to-text checks.
# OUT_DIR/bad/ holds inputs that must be refused (415), with bad/README listing why.
# OUT_DIR/make_corpus.sh is a copy of this script, to tell a corpus made by an older one.
set -euo pipefail
out=${1:?usage: make_corpus.sh OUT_DIR}
mkdir -p "$out/bad"

need=()
for t in espeak-ng sox ffmpeg ffprobe; do command -v "$t" >/dev/null || need+=("$t"); done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox ffmpeg >/dev/null
  else
    echo "make_corpus.sh: missing ${need[*]} (apt-get install espeak-ng sox ffmpeg)" >&2; exit 1
  fi
fi

cat > "$out/texts.tsv" <<'TXT'
t1	Hello, this is your driver. I am outside the building with your package.
t2	Please leave the parcel at the front door if nobody answers the bell.
t3	The meeting has been moved to Thursday afternoon at three o'clock.
t4	I will be about ten minutes late because of heavy traffic on the bridge.
t5	Can you call me back when you have a moment? It is about the invoice.
t6	The quick brown fox jumps over the lazy dog near the river bank.
TXT

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# One speech track per sentence, and a longer one made of all of them.
while IFS=$'\t' read -r id text; do
  espeak-ng -v en-us -s 150 -w "$tmp/$id.wav" "$text"
done < "$out/texts.tsv"
sox $(cut -f1 "$out/texts.tsv" | sed "s|^|$tmp/|; s|$|.wav|") "$tmp/all.wav"
# About two minutes: the sentences four times over, with pauses between them.
sox "$tmp/all.wav" "$tmp/all_pad.wav" pad 0 1.5
sox "$tmp/all_pad.wav" "$tmp/all_pad.wav" "$tmp/all_pad.wav" "$tmp/all_pad.wav" "$tmp/long.wav"

enc() { # enc SRC NAME ffmpeg-args...
  local src=$1 name=$2; shift 2
  ffmpeg -nostdin -loglevel error -y -i "$tmp/$src.wav" "$@" "$out/$name"
}
enc t1 t1_pcm16_16k.wav   -ar 16000 -ac 1 -c:a pcm_s16le
enc t2 t2_pcm16_48k_stereo.wav -ar 48000 -ac 2 -c:a pcm_s16le
enc t3 t3_f32_44k.wav     -ar 44100 -ac 1 -c:a pcm_f32le
enc t4 t4_pcm24_ext.wav   -ar 48000 -ac 2 -c:a pcm_s24le -rf64 auto
enc t5 t5_cbr64.mp3       -ar 44100 -ac 1 -c:a libmp3lame -b:a 64k
enc t6 t6_vbr.mp3         -ar 44100 -ac 2 -c:a libmp3lame -q:a 4
enc t1 t1_vbr_noxing.mp3  -ar 22050 -ac 1 -c:a libmp3lame -q:a 6 -write_xing 0
enc t2 t2_opus24.ogg      -ar 48000 -ac 1 -c:a libopus -b:a 24k
enc t3 t3_vorbis.ogg      -ar 44100 -ac 1 -c:a libvorbis -q:a 3
enc t4 t4.flac            -ar 44100 -ac 1 -c:a flac
enc t5 t5_aac.m4a         -ar 44100 -ac 1 -c:a aac -b:a 64k
enc t6 t6_alac.m4a        -ar 44100 -ac 1 -c:a alac
enc t1 t1_opus.webm       -ar 48000 -ac 1 -c:a libopus -b:a 32k
enc long long_opus.ogg    -ar 48000 -ac 1 -c:a libopus -b:a 24k
enc long long_aac.m4a     -ar 44100 -ac 1 -c:a aac -b:a 48k
enc long long_pcm16.wav   -ar 16000 -ac 1 -c:a pcm_s16le

# Ogg streams that do not start at zero, as when recording joins a live stream (RFC 7845 §4.3;
# the Vorbis I spec, appendix A.2): the packets of t2_opus24.ogg and t3_vorbis.ogg, copied with
# every granule position 10 s higher (-output_ts_offset). The first audio page's granule position
# is then 10 s plus the samples on it; the length still counts from the first sample, not zero.
live() { # live SRC NAME
  ffmpeg -nostdin -loglevel error -y -i "$out/$1" -c copy -output_ts_offset 10 "$out/$2"
  local start; start=$(ffprobe -v error -show_entries format=start_time -of csv=p=0 "$out/$2")
  awk -v s="$start" 'BEGIN { exit !(s > 9.9) }' ||
    { echo "make_corpus.sh: $2 should start 10 s in, ffprobe says $start" >&2; exit 1; }
}
live t2_opus24.ogg t2_opus24_live.ogg
live t3_vorbis.ogg t3_vorbis_live.ogg

# The manifest: ffprobe is the oracle, with two refinements a server must match as well.
# - duration_seconds is ffprobe's container duration, except where ffprobe only estimates it from the
#   first frame's bitrate (MP3 with no Xing/VBRI header: it says "Estimating duration from bitrate");
#   there it is the end of the last packet (ffprobe -show_packets), the real length.
#   And where an Ogg stream starts above zero (ffprobe's start_time > 0, the *_live.ogg files),
#   ffmpeg 5.1 leaves the time before the start in an Opus stream's duration (it takes it out for
#   Vorbis); there it is the span of the packets, from the start of the first to the end of the
#   last, which is what ffprobe says of the same stream starting at zero.
# - decoded_seconds is what ffmpeg decodes, with the encoder delay and padding that the file declares
#   removed (LAME gapless tag, Opus pre-skip, MP4 edit lists). A server may report either figure.
printf 'file\tformat_name\tcodec\tsample_rate\tchannels\tduration_seconds\ttext_id\tdecoded_seconds\n' > "$out/manifest.tsv"
for f in "$out"/*.*; do
  base=${f##*/}
  case $base in manifest.tsv|texts.tsv|make_corpus.sh) continue ;; esac
  info=$(ffprobe -v error -select_streams a:0 -show_entries stream=codec_name,sample_rate,channels \
         -show_entries format=format_name,duration,start_time -of default=nw=1 "$f")
  get() { printf '%s\n' "$info" | sed -n "s/^$1=//p" | head -1; }
  packets() { ffprobe -v error -select_streams a:0 -show_entries packet=pts_time,duration_time -of csv=p=0 "$f"; }
  duration=$(get duration)
  if ffprobe -v warning "$f" 2>&1 | grep -q 'Estimating duration from bitrate'; then
    duration=$(packets | awk -F, '$1 != "N/A" { e = $1 + $2; if (e > m) m = e } END { printf "%.6f", m }')
  elif [ "$(get format_name)" = ogg ] && awk -v s="$(get start_time)" 'BEGIN { exit !(s > 0) }'; then
    duration=$(packets | awk -F, '$1 != "" && $1 != "N/A" { e = $1 + $2; if (e > m) m = e; if (!n++ || $1 < s) s = $1 }
                                  END { printf "%.6f", m - s }')
  fi
  sr=$(get sample_rate); ch=$(get channels)
  decoded=$(ffmpeg -nostdin -v error -i "$f" -map 0:a:0 -f f32le -c:a pcm_f32le - | wc -c |
            awk -v sr="$sr" -v ch="$ch" '{ printf "%.6f", $1 / (4 * sr * ch) }')
  text_id=${base%%_*}; text_id=${text_id%%.*}
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$base" "$(get format_name)" "$(get codec_name)" \
    "$sr" "$ch" "$duration" "$text_id" "$decoded" >> "$out/manifest.tsv"
done

# Inputs that must be refused.
printf 'this is not audio, just some text pretending to be a wav file\n' > "$out/bad/text.wav"
: > "$out/bad/empty.wav"
head -c 44 "$out/t1_pcm16_16k.wav" > "$out/bad/header_only.wav"
head -c 200 "$out/t5_cbr64.mp3" > "$out/bad/truncated_head.mp3"
head -c 4096 /dev/urandom > "$out/bad/random.mp3"
printf '\x89PNG\r\n\x1a\n' > "$out/bad/png_named.mp3"; head -c 2000 /dev/urandom >> "$out/bad/png_named.mp3"
cat > "$out/bad/README" <<'TXT'
text.wav          plain text with an audio extension
empty.wav         zero bytes
header_only.wav   a WAV header with no samples
truncated_head.mp3  the first 200 bytes of an MP3
random.mp3        random bytes
png_named.mp3     a PNG signature followed by noise
TXT
# The script that made the corpus goes with it: when the script changes, the corpus is stale.
cp "${BASH_SOURCE[0]}" "$out/make_corpus.sh"
echo "corpus: $(($(wc -l < "$out/manifest.tsv") - 1)) good files, $(ls "$out/bad" | grep -vc README) bad files in $out"
