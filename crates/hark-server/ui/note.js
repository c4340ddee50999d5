// A note: the player with its waveform, live processing status, the transcript whose words
// seek and light up while playing, the corrected transcript with its edits, Share, Send and
// Delete.
import {
  ApiError, api, clock, copy, fillChannels, follow, h, me, recipients, say, statusBadge, when,
} from '/ui/app.js';

export function start(main) {
  const id = main.dataset.note;
  const base = `/api/v1/notes/${id}`;
  const $ = (selector) => main.querySelector(selector);
  const player = $('#player');
  const canvas = $('#waveform');
  const status = $('#note-status');
  let note = null;
  let peaks = null;
  let words = [];
  let current = null;
  // Each part is fetched once; the flags are set before the fetch so that refreshes running
  // side by side do not fetch it twice, and cleared again if it fails.
  let waveformAsked = false;
  let original = null;
  let correctedShown = false;

  player.src = `${base}/audio`;
  const startAt = Number(new URLSearchParams(location.search).get('t'));
  if (startAt > 0) {
    player.addEventListener('loadedmetadata', () => { player.currentTime = startAt; }, { once: true });
  }

  // The note, its steps, and whatever they have made so far.
  async function refresh() {
    let jobs;
    try {
      [note, jobs] = await Promise.all([api('GET', base), api('GET', `${base}/jobs`)]);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        say(status, 'This note has been deleted.', true);
        stopFollowing();
        return;
      }
      say(status, `Could not load the note: ${error.message}. Trying again…`, true);
      clearTimeout(polling);
      polling = setTimeout(refresh, 5000);
      return;
    }
    showNote(jobs.items);
    const step = (name) => jobs.items.find((j) => j.step === name)?.status;
    if (!waveformAsked && step('waveform') === 'done') loadWaveform();
    if (!original && step('transcribe') === 'done') await loadTranscript();
    if (step('transcribe') === 'skipped') {
      say($('#transcript'), 'This server has no speech model installed, so notes are not transcribed.');
    }
    if (!correctedShown && original && step('correct') === 'done') loadCorrected();
    const transcribed = step('transcribe') === 'done';
    const correctable = transcribed && ['skipped', 'failed'].includes(step('correct')) && note.owner_id === me;
    $('#correct').hidden = !correctable;
    const busy = jobs.items.some((j) => j.status === 'queued' || j.status === 'running');
    clearTimeout(polling);
    // Events say when a note is ready; the steps between are checked on a short timer.
    if (busy || note.status === 'pending' || note.status === 'processing') polling = setTimeout(refresh, 1500);
  }
  let polling = null;

  function showNote(jobs) {
    const title = note.title ?? note.name;
    $('#note-title').textContent = title;
    document.title = `${title} · Hark`;
    const facts = [
      ['File', note.name],
      ['Duration', clock(note.duration_seconds)],
      ['Format', `${note.format} (${note.codec}), ${note.sample_rate} Hz, ${note.channels === 1 ? 'mono' : `${note.channels} channels`}`],
      ['Created', when(note.created_at)],
      ['Status', statusBadge(note.status)],
    ];
    if (note.series) facts.splice(1, 0, ['Series', note.series]);
    if (note.loudness) facts.push(['Loudness', `${note.loudness.integrated_lufs.toFixed(1)} LUFS`]);
    $('#note-meta').replaceChildren(...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    $('#jobs').replaceChildren(...jobs.map((j) => h('li', {}, j.step, ' ', statusBadge(j.status))));
    const words = {
      pending: 'Waiting to be processed…',
      processing: 'Processing…',
      ready: 'Ready.',
      failed: `Processing failed: ${note.failure_reason ?? 'unknown reason'}`,
    };
    say(status, words[note.status] ?? note.status, note.status === 'failed');
    const owner = note.owner_id === me;
    for (const section of ['#send-form', '#delete']) $(section).closest('section').hidden = !owner;
  }

  // A browser's own recording (WebM from MediaRecorder) carries no duration: the player says
  // Infinity until it has read the whole file, so the measured one stands in.
  function length() {
    return Number.isFinite(player.duration) ? player.duration : note?.duration_seconds ?? 0;
  }

  // The waveform: drawn from /waveform, played part shaded, click or arrow keys to seek.
  async function loadWaveform() {
    waveformAsked = true;
    try {
      peaks = (await api('GET', `${base}/waveform`)).bars;
      draw();
    } catch {
      waveformAsked = false;
    }
  }

  function draw() {
    const context = canvas.getContext('2d');
    const { width, height } = canvas;
    context.clearRect(0, 0, width, height);
    const bars = peaks ?? [];
    const duration = length();
    const played = duration ? player.currentTime / duration : 0;
    const step = width / Math.max(bars.length, 1);
    bars.forEach((value, i) => {
      const barHeight = Math.max(2, value * (height - 8));
      context.fillStyle = (i + 0.5) / bars.length <= played ? '#0a5cc2' : '#8c959f';
      context.fillRect(i * step + 1, (height - barHeight) / 2, Math.max(1, step - 2), barHeight);
    });
    canvas.setAttribute('aria-valuemax', String(Math.round(duration)));
    canvas.setAttribute('aria-valuenow', String(Math.round(player.currentTime)));
    canvas.setAttribute('aria-valuetext', `${clock(player.currentTime)} of ${clock(duration)}`);
  }

  function seek(seconds) {
    const duration = length();
    player.currentTime = Math.min(Math.max(0, seconds), duration);
    draw();
    highlight();
  }

  canvas.addEventListener('click', (event) => {
    const box = canvas.getBoundingClientRect();
    const duration = length();
    seek(((event.clientX - box.left) / box.width) * duration);
  });
  canvas.addEventListener('keydown', (event) => {
    const moves = { ArrowLeft: -5, ArrowRight: 5, ArrowDown: -5, ArrowUp: 5, PageDown: -30, PageUp: 30 };
    if (event.key in moves) seek(player.currentTime + moves[event.key]);
    else if (event.key === 'Home') seek(0);
    else if (event.key === 'End') seek(Infinity);
    else if (event.key === ' ' || event.key === 'Enter') player.paused ? player.play() : player.pause();
    else return;
    event.preventDefault();
  });

  // The word being said lights up while playing.
  function highlight() {
    const t = player.currentTime;
    const word = words.find((w) => t >= w.start && t < w.end) ?? null;
    if (word === current) return;
    current?.element.classList.remove('current');
    word?.element.classList.add('current');
    current = word;
  }
  let frame = null;
  function tick() {
    draw();
    highlight();
    frame = player.paused ? null : requestAnimationFrame(tick);
  }
  player.addEventListener('play', () => { frame ??= requestAnimationFrame(tick); });
  player.addEventListener('seeked', () => { draw(); highlight(); });
  player.addEventListener('loadedmetadata', draw);
  // A recipient who plays the note to its end has listened to it.
  player.addEventListener('ended', () => {
    if (note && note.owner_id !== me) api('POST', `/api/v1/inbox/${id}/listened`).catch(() => {});
  });

  // Segments start with a time button (for the keyboard); every word seeks on click.
  function segmentsOf(transcript, register) {
    return transcript.segments.map((segment) => h('p', {},
      h('button', {
        type: 'button', class: 'at secondary', 'aria-label': `Play from ${clock(segment.start)}`,
        onclick: () => { seek(segment.start); player.play(); },
      }, clock(segment.start)),
      segment.words.length
        ? segment.words.flatMap((word) => {
          const element = h('span', {
            class: 'word', title: clock(word.start), tabindex: '-1', dataset: { start: String(word.start) },
            onclick: () => { seek(word.start); player.play(); },
          }, word.word.trim());
          if (register) words.push({ start: word.start, end: word.end, element });
          return [element, ' '];
        })
        : segment.text));
  }

  async function loadTranscript() {
    try {
      const transcript = await api('GET', `${base}/transcript`);
      if (original) return;
      original = transcript;
      words = [];
      const box = $('#transcript');
      box.replaceChildren(...(transcript.segments.length
        ? segmentsOf(transcript, true)
        : [h('p', { class: 'hint' }, 'Nothing was said in this note.')]));
      highlight();
      box.querySelector('.word')?.setAttribute('tabindex', '0');
    } catch {
      // Not there yet: the next refresh tries again.
    }
  }

  // The words are one stop for the Tab key: arrows move between them, Enter plays from one.
  $('#transcript').addEventListener('keydown', (event) => {
    const word = event.target.closest('.word');
    if (!word) return;
    const all = [...$('#transcript').querySelectorAll('.word')];
    const at = all.indexOf(word);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: all.length - 1 }[event.key];
    if (to !== undefined && all[to]) {
      word.setAttribute('tabindex', '-1');
      all[to].setAttribute('tabindex', '0');
      all[to].focus();
    } else if (event.key === 'Enter' || event.key === ' ') {
      word.click();
    } else {
      return;
    }
    event.preventDefault();
  });

  // The corrected text: the original with each edit marked, removed words struck through.
  async function loadCorrected() {
    correctedShown = true;
    try {
      const corrected = await api('GET', `${base}/transcript?version=corrected`);
      const chars = Array.from(original.text);
      const parts = [];
      let at = 0;
      for (const edit of corrected.edits ?? []) {
        parts.push(chars.slice(at, edit.offset).join(''));
        const removed = chars.slice(edit.offset, edit.offset + edit.length).join('');
        if (removed) parts.push(h('del', { title: edit.message }, removed));
        if (edit.replacement) parts.push(h('ins', { title: edit.message }, edit.replacement));
        at = edit.offset + edit.length;
      }
      parts.push(chars.slice(at).join(''));
      const count = corrected.edits?.length ?? 0;
      const box = $('#corrected');
      box.replaceChildren(
        h('p', {}, ...parts),
        h('p', { class: 'hint' }, count ? `${count} edit${count === 1 ? '' : 's'} marked.` : 'No edits were needed.'),
      );
      const audio = note.renditions.find((r) => r.name === 'corrected');
      if (audio) box.append(h('audio', { controls: true, preload: 'none', src: audio.url, 'aria-label': 'Corrected audio' }));
      say($('#correct-status'), '');
    } catch {
      correctedShown = false;
    }
  }

  $('#correct').addEventListener('click', async () => {
    try {
      await api('POST', `${base}/correct`);
      say($('#correct-status'), 'Correcting…');
      $('#correct').hidden = true;
      refresh();
    } catch (error) {
      say($('#correct-status'), error.message, true);
    }
  });

  $('#share-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const shareStatus = $('#share-status');
    const url = $('#share-url');
    try {
      const expiresIn = Number($('#expiry').value);
      const link = await api('POST', `${base}/link`, { expires_in: expiresIn });
      url.value = link.url;
      url.hidden = false;
      const copied = await copy(link.url);
      const until = new Date(link.expires_at).toLocaleString();
      say(shareStatus, copied ? `Link copied to the clipboard; it works until ${until}.` : `Copy this link; it works until ${until}.`);
      url.select();
    } catch (error) {
      say(shareStatus, `No link: ${error.message}`, true);
    }
  });

  fillChannels($('#send-channel'));

  $('#send-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const sendStatus = $('#send-status');
    const to = recipients($('#send-to').value);
    const channel = $('#send-channel').value || undefined;
    if (to.length === 0 && !channel) {
      say(sendStatus, 'Name at least one recipient or a channel.', true);
      return;
    }
    try {
      const result = await api('POST', `${base}/send`, { to, channel });
      const n = result.recipients.length;
      say(sendStatus, `Sent to ${n} recipient${n === 1 ? '' : 's'}.`);
      $('#send-to').value = '';
    } catch (error) {
      say(sendStatus, `Not sent: ${error.message}`, true);
    }
  });

  $('#delete').addEventListener('click', async () => {
    if (!confirm(`Delete “${note?.title ?? note?.name ?? 'this note'}”? This cannot be undone.`)) return;
    try {
      await api('DELETE', base);
      location.assign('/');
    } catch (error) {
      say($('#delete-status'), `Not deleted: ${error.message}`, true);
    }
  });

  const stopFollowing = follow((event) => {
    if (event.type === 'reconnected' || event.data?.note_id === id) refresh();
  });

  refresh();
}
