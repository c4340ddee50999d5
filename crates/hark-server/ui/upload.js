// Upload: files dropped or chosen, or recorded from the microphone (WebM Opus), each sent
// with a progress bar, with the title, recipients and channel of the form.
import { clock, fillChannels, h, recipients, say, upload } from '/ui/app.js';

export function start(main) {
  const form = main.querySelector('#upload-form');
  const input = main.querySelector('#files');
  const drop = main.querySelector('#drop');
  const list = main.querySelector('#uploads');
  const empty = main.querySelector('#queue-empty');
  const channel = main.querySelector('#channel');
  const record = main.querySelector('#record');
  const stop = main.querySelector('#stop');
  const timer = main.querySelector('#recording');
  const recorderStatus = main.querySelector('#recorder-status');
  const queue = [];

  fillChannels(channel);

  /** Adds a file to the list; a recording gets a player to hear it before it is sent. */
  function add(file, { recorded = false } = {}) {
    const name = file.name;
    const progress = h('progress', { max: '1', value: '0', 'aria-label': `Upload of ${name}` });
    const status = h('p', { class: 'hint', role: 'status' }, 'Ready to upload');
    const previewUrl = recorded ? URL.createObjectURL(file) : null;
    const preview = previewUrl
      ? h('audio', { controls: true, src: previewUrl, 'aria-label': `Preview of ${name}` })
      : null;
    const item = { file, name, progress, status, state: 'waiting', previewUrl };
    const remove = h('button', {
      type: 'button', class: 'link', 'aria-label': `Remove ${name}`,
      onclick: () => {
        if (item.state === 'queued' || item.state === 'uploading') return;
        queue.splice(queue.indexOf(item), 1);
        item.li.remove();
        if (previewUrl) URL.revokeObjectURL(previewUrl);
        empty.hidden = queue.length > 0;
      },
    }, 'Remove');
    item.remove = remove;
    item.li = h('li', {}, h('div', { class: 'row' }, h('strong', {}, name), remove), preview, progress, status);
    queue.push(item);
    list.append(item.li);
    empty.hidden = true;
  }

  input.addEventListener('change', () => {
    for (const file of input.files) add(file);
    input.value = '';
  });
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add('over');
    });
  }
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    for (const file of event.dataTransfer.files) add(file);
  });

  // Recording: MediaRecorder in WebM Opus where the browser has it (Chromium and Firefox do).
  let recorder = null;
  let ticking = null;
  record.addEventListener('click', async () => {
    record.disabled = true;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const type = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm', 'audio/mp4']
        .find((t) => MediaRecorder.isTypeSupported(t));
      recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
    } catch (error) {
      stream?.getTracks().forEach((track) => track.stop());
      record.disabled = false;
      say(recorderStatus, `The microphone is not available: ${error.message}`, true);
      return;
    }
    const chunks = [];
    const began = Date.now();
    recorder.addEventListener('dataavailable', (event) => event.data.size && chunks.push(event.data));
    recorder.addEventListener('stop', () => {
      stream.getTracks().forEach((track) => track.stop());
      clearInterval(ticking);
      timer.textContent = '';
      const mime = (recorder.mimeType || 'audio/webm').split(';')[0];
      // Safari records AAC in MP4; the others Opus in WebM (or Ogg).
      const extension = { 'audio/ogg': 'ogg', 'audio/mp4': 'm4a' }[mime] ?? 'webm';
      const stamp = new Date().toISOString().slice(0, 19).replace('T', ' ').replaceAll(':', '.');
      const file = new File(chunks, `Recording ${stamp}.${extension}`, { type: mime });
      add(file, { recorded: true });
      say(recorderStatus, `Recorded ${clock((Date.now() - began) / 1000)}. Press Upload to send it.`);
      record.disabled = false;
      stop.disabled = true;
      recorder = null;
      record.focus();
    });
    recorder.start(250);
    stop.disabled = false;
    stop.focus();
    say(recorderStatus, 'Recording…');
    ticking = setInterval(() => { timer.textContent = clock((Date.now() - began) / 1000); }, 250);
  });
  stop.addEventListener('click', () => recorder?.stop());

  const submit = main.querySelector('#upload');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const waiting = queue.filter((item) => item.state === 'waiting' || item.state === 'failed');
    if (waiting.length === 0) {
      say(recorderStatus, 'Choose, drop or record a file first.', true);
      return;
    }
    // Taken at once, so a second press cannot send them again.
    for (const item of waiting) item.state = 'queued';
    const query = {};
    const title = form.elements.title.value.trim();
    const to = recipients(form.elements.to.value).join(',');
    if (title) query.title = title;
    if (to) query.to = to;
    if (channel.value) query.channel = channel.value;
    submit.disabled = true;
    try {
      // Two at a time: enough to fill the connection without starving the first.
      const running = new Set();
      for (const item of waiting) {
        const job = send(item, query).finally(() => running.delete(job));
        running.add(job);
        if (running.size >= 2) await Promise.race(running);
      }
      await Promise.all(running);
    } finally {
      submit.disabled = false;
    }
  });

  async function send(item, query) {
    item.state = 'uploading';
    item.remove.hidden = true;
    say(item.status, 'Uploading…');
    try {
      const note = await upload(item.file, item.name, query, (fraction) => {
        item.progress.value = fraction;
      });
      item.state = 'done';
      item.progress.value = 1;
      // Uploaded: its page plays it now, so the local copy can go.
      if (item.previewUrl) {
        item.li.querySelector('audio')?.remove();
        URL.revokeObjectURL(item.previewUrl);
      }
      item.status.replaceChildren('Uploaded. ', h('a', { href: `/notes/${note.id}` }, `Open ${note.title ?? note.name}`));
    } catch (error) {
      item.state = 'failed';
      item.remove.hidden = false;
      say(item.status, `Not uploaded: ${error.message}`, true);
    }
  }
}
