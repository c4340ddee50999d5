// The library: the caller's notes with filters, transcript search, sorting by column and
// cursor paging. The filters live in the address, so a view can be shared or reloaded.
import { api, clock, h, me, say, statusBadge, when } from '/ui/app.js';

const FILTERS = ['name', 'max_duration', 'status', 'q'];
// Notes per page unless the address names a `limit` (1 to 500, as the API takes).
const PAGE_SIZE = 50;

export function start(main) {
  const form = main.querySelector('#filters');
  const body = main.querySelector('#notes tbody');
  const summary = main.querySelector('#summary');
  const first = main.querySelector('#first-page');
  const next = main.querySelector('#next-page');
  const sortSelect = main.querySelector('#f-sort');
  let senders = null;

  const query = () => new URLSearchParams(location.search);

  function fillForm() {
    const params = query();
    for (const key of FILTERS) form.elements[key].value = params.get(key) ?? '';
    sortSelect.value = params.get('sort') ?? '-created_at';
    const sort = sortSelect.value;
    for (const th of main.querySelectorAll('th[data-sort]')) {
      const field = th.dataset.sort;
      const state = sort === field ? 'ascending' : sort === `-${field}` ? 'descending' : null;
      if (state) th.setAttribute('aria-sort', state);
      else th.removeAttribute('aria-sort');
    }
  }

  function go(params) {
    history.pushState(null, '', params.size ? `/?${params}` : '/');
    load();
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const key of FILTERS) {
      const value = form.elements[key].value.trim();
      if (value) params.set(key, value);
    }
    const sort = query().get('sort') ?? sortSelect.value;
    if (sort && sort !== '-created_at') params.set('sort', sort);
    if (query().get('limit')) params.set('limit', query().get('limit'));
    go(params);
  });

  sortSelect.addEventListener('change', () => {
    const params = query();
    params.delete('cursor');
    params.set('sort', sortSelect.value);
    go(params);
  });

  for (const th of main.querySelectorAll('th[data-sort]')) {
    th.querySelector('button').addEventListener('click', () => {
      const params = query();
      const field = th.dataset.sort;
      const current = params.get('sort') ?? '-created_at';
      // A new column starts with its most useful order: names A to Z, the rest newest or longest first.
      const ascendingFirst = field === 'name';
      let sort;
      if (current === field) sort = `-${field}`;
      else if (current === `-${field}`) sort = field;
      else sort = ascendingFirst ? field : `-${field}`;
      params.set('sort', sort);
      params.delete('cursor');
      go(params);
    });
  }

  first.addEventListener('click', () => {
    const params = query();
    params.delete('cursor');
    go(params);
  });
  next.addEventListener('click', () => {
    const params = query();
    params.set('cursor', next.dataset.cursor);
    go(params);
    // The button may vanish on the last page: the reader goes on from the top of the table.
    main.querySelector('h1').focus();
  });

  window.addEventListener('popstate', load);

  async function senderNames() {
    // Received notes name their sender in the inbox; the rest are the caller's own.
    if (!senders) {
      senders = new Map();
      try {
        const inbox = await api('GET', '/api/v1/inbox?limit=200');
        for (const item of inbox.items) senders.set(item.note.id, item.sender.email);
      } catch {
        // Without the inbox, received notes show no sender.
      }
    }
    return senders;
  }

  // Quick clicks can overlap loads; only the latest one is shown.
  let latest = 0;

  async function load() {
    const mine = ++latest;
    fillForm();
    const params = query();
    const request = new URLSearchParams({ limit: String(PAGE_SIZE) });
    for (const key of [...FILTERS, 'sort', 'cursor', 'limit']) {
      const value = params.get(key);
      if (value) request.set(key, value);
    }
    say(summary, 'Loading…');
    try {
      const [list, names] = await Promise.all([api('GET', `/api/v1/notes?${request}`), senderNames()]);
      if (mine === latest) render(list, names, params);
    } catch (error) {
      if (mine !== latest) return;
      body.replaceChildren();
      say(summary, `Could not list notes: ${error.message}`, true);
    }
  }

  function render(list, names, params) {
    const searching = Boolean(params.get('q'));
    const rows = list.items.map((note) => row(note, names, searching));
    body.replaceChildren(...rows);
    const count = list.items.length;
    const filtered = FILTERS.some((k) => params.get(k));
    let text;
    if (count === 0) text = filtered ? 'No notes match these filters.' : 'No notes yet. Upload or record one.';
    else text = `${count} note${count === 1 ? '' : 's'} shown${list.next_cursor ? ', more on the next page' : ''}.`;
    say(summary, text);
    first.hidden = !params.get('cursor');
    next.hidden = !list.next_cursor;
    if (list.next_cursor) next.dataset.cursor = list.next_cursor;
  }

  function row(note, names, searching) {
    const link = `/notes/${note.id}`;
    const label = note.title ? `${note.title}` : note.name;
    const nameCell = h('td', { 'data-label': 'Name' },
      h('div', {},
        h('a', { href: link }, label),
        note.title ? h('div', { class: 'hint' }, note.name) : null,
        searching && note.matches?.length ? matches(note, link) : null));
    const sender = note.owner_id === me ? 'You' : names.get(note.id) ?? '—';
    return h('tr', {},
      nameCell,
      h('td', { class: 'num', 'data-label': 'Duration' }, clock(note.duration_seconds)),
      h('td', { 'data-label': 'Format' }, note.format),
      h('td', { 'data-label': 'Status' }, statusBadge(note.status)),
      h('td', { 'data-label': 'Created' }, when(note.created_at)),
      h('td', { 'data-label': 'Sender' }, sender),
      h('td', { 'data-label': 'File' }, h('a', { href: `/api/v1/notes/${note.id}/audio`, download: note.name }, 'Download')));
  }

  function matches(note, link) {
    return h('ul', { class: 'matches', 'aria-label': `Matches in ${note.title ?? note.name}` },
      note.matches.map((m) => h('li', {},
        h('a', { href: `${link}?t=${m.start.toFixed(2)}` },
          h('time', {}, clock(m.start)), m.text))));
  }

  load();
}
