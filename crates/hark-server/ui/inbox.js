// The inbox: received notes, newest first, unlistened ones marked, kept current over SSE, with
// the unread count in the page title. Playing a note to its end marks it listened.
import { api, clock, follow, h, say, when } from '/ui/app.js';

const SHOWN = 200;

export function start(main) {
  const list = main.querySelector('#inbox');
  const empty = main.querySelector('#inbox-empty');
  const unread = main.querySelector('#unread');
  // Items already on the page keep their element, so a playing note keeps playing.
  const shown = new Map();

  // Loads can overlap (an event, a note played to its end); only the latest one is shown.
  let latest = 0;

  async function load() {
    const mine = ++latest;
    let page;
    let unlistened;
    try {
      [page, unlistened] = await Promise.all([
        api('GET', `/api/v1/inbox?limit=${SHOWN}`),
        api('GET', '/api/v1/inbox?unlistened=true&limit=500'),
      ]);
    } catch (error) {
      if (mine === latest) say(unread, `Could not load the inbox: ${error.message}`, true);
      return;
    }
    if (mine !== latest) return;
    const count = unlistened.items.length;
    const more = count === 500 ? '+' : '';
    document.title = count ? `(${count}${more}) Inbox · Hark` : 'Inbox · Hark';
    say(unread, count ? `${count}${more} unread` : 'All listened to.');
    empty.hidden = page.items.length > 0;
    const items = page.items.map((item) => {
      const existing = shown.get(item.note.id);
      if (existing) {
        update(existing, item);
        return existing.element;
      }
      const entry = render(item);
      shown.set(item.note.id, entry);
      return entry.element;
    });
    const keep = new Set(page.items.map((item) => item.note.id));
    for (const [id, entry] of shown) {
      if (!keep.has(id)) {
        entry.element.remove();
        shown.delete(id);
      }
    }
    // Only new or moved items are inserted: one that stays where it is keeps its focus and
    // its playing audio.
    items.forEach((element, i) => {
      if (list.children[i] !== element) list.insertBefore(element, list.children[i] ?? null);
    });
  }

  function render(item) {
    const note = item.note;
    const title = note.title ?? note.name;
    const badge = h('span', { class: 'badge' }, 'New');
    const audio = h('audio', {
      controls: true, preload: 'none', src: `/api/v1/notes/${note.id}/audio`, 'aria-label': `Play ${title}`,
    });
    const entry = { element: null, badge, item };
    audio.addEventListener('ended', async () => {
      if (entry.item.listened_at) return;
      try {
        await api('POST', `/api/v1/inbox/${note.id}/listened`);
        entry.item = { ...entry.item, listened_at: new Date().toISOString() };
        update(entry, entry.item);
        load();
      } catch (error) {
        console.warn('could not mark as listened', error);
      }
    });
    entry.element = h('li', {},
      h('div', { class: 'row' },
        h('a', { href: `/notes/${note.id}` }, h('strong', {}, title)), badge),
      h('div', { class: 'hint' },
        `From ${item.sender.email}`, item.channel ? ` in ${item.channel}` : '', ' · ',
        when(item.delivered_at), ' · ', clock(note.duration_seconds)),
      audio);
    update(entry, item);
    return entry;
  }

  function update(entry, item) {
    entry.item = item;
    const unlistened = !item.listened_at;
    entry.element.classList.toggle('unread', unlistened);
    entry.badge.hidden = !unlistened;
  }

  // Bursts of events make one reload.
  let pending = null;
  follow((event) => {
    const about = event.data?.note_id;
    const relevant = event.type === 'reconnected' || event.type === 'note.received'
      || (['note.listened', 'note.deleted', 'note.ready'].includes(event.type) && shown.has(about));
    if (!relevant) return;
    clearTimeout(pending);
    pending = setTimeout(load, 100);
  });
  load();
}
