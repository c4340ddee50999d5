// Settings: channels and their members, webhooks and their deliveries, personal API keys
// (a key's secret is shown once, when it is made).
import { EVENT_TYPES, api, copy, h, me, say, when } from '/ui/app.js';

export function start(main) {
  const $ = (selector) => main.querySelector(selector);
  channels($);
  webhooks($);
  keys($);
}

function channels($) {
  const list = $('#channels');
  const status = $('#channel-status');

  async function load() {
    const answer = await api('GET', '/api/v1/channels');
    list.replaceChildren(...answer.items.map(render));
    if (answer.items.length === 0) list.append(h('li', { class: 'hint' }, 'No channels yet.'));
  }

  function render(channel) {
    const mine = channel.creator_id === me;
    const members = h('ul', { 'aria-label': `Members of ${channel.name}` },
      channel.members.map((member, i) => {
        const email = channel.member_emails[i];
        return h('li', {}, member === me ? 'You' : email, ' ',
          mine ? h('button', {
            type: 'button', class: 'link', 'aria-label': `Remove ${email} from ${channel.name}`,
            onclick: () => act(() => api('DELETE', `/api/v1/channels/${channel.name}/members/${encodeURIComponent(member)}`), `${email} removed.`),
          }, 'Remove') : null);
      }));
    const field = `member-${channel.name}`;
    const add = mine ? h('form', {
      class: 'fields',
      onsubmit: (event) => {
        event.preventDefault();
        const email = event.target.elements.member.value.trim();
        act(() => api('PUT', `/api/v1/channels/${channel.name}/members/${encodeURIComponent(email)}`), `${email} added to ${channel.name}.`);
      },
    },
    h('div', {}, h('label', { for: field }, 'Member email'),
      h('input', { id: field, name: 'member', type: 'email', required: true, autocomplete: 'off' })),
    h('button', { type: 'submit' }, 'Add member')) : h('p', { class: 'hint' }, `Managed by ${channel.creator_email}.`);
    return h('li', {}, h('h3', {}, channel.name),
      h('p', { class: 'hint' }, 'Created ', when(channel.created_at)),
      channel.members.length ? members : h('p', { class: 'hint' }, 'No members yet.'),
      add);
  }

  /** Makes a change and shows the channels again; false when it was refused. */
  async function act(change, done) {
    try {
      await change();
    } catch (error) {
      say(status, error.message, true);
      return false;
    }
    say(status, done);
    await load().catch(() => {});
    return true;
  }

  $('#channel-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = event.target.elements.name.value.trim();
    act(() => api('POST', '/api/v1/channels', { name }), `Channel ${name} created.`)
      .then((made) => { if (made) event.target.reset(); });
  });
  load().catch((error) => say(status, `Could not load channels: ${error.message}`, true));
}

function webhooks($) {
  const list = $('#webhooks');
  const status = $('#webhook-status');
  const form = $('#webhook-form');
  const legend = form.querySelector('fieldset');
  for (const type of EVENT_TYPES) {
    const id = `event-${type.replace('.', '-')}`;
    legend.append(h('span', {},
      h('input', { type: 'checkbox', id, name: 'events', value: type, checked: type === 'note.ready' || type === 'note.received' }),
      ' ', h('label', { for: id }, type)));
  }

  async function load() {
    const answer = await api('GET', '/api/v1/webhooks');
    list.replaceChildren(...answer.items.map(render));
    if (answer.items.length === 0) list.append(h('li', { class: 'hint' }, 'No webhooks yet.'));
  }

  function render(hook) {
    const deliveries = h('div', {});
    const show = h('button', {
      type: 'button', class: 'secondary', 'aria-expanded': 'false', 'aria-label': `Deliveries to ${hook.url}`,
      onclick: async () => {
        const open = show.getAttribute('aria-expanded') === 'true';
        show.setAttribute('aria-expanded', String(!open));
        if (open) {
          deliveries.replaceChildren();
          return;
        }
        try {
          const answer = await api('GET', `/api/v1/webhooks/${hook.id}/deliveries?limit=50`);
          // Closed again while the list was on its way.
          if (show.getAttribute('aria-expanded') !== 'true') return;
          deliveries.replaceChildren(answer.items.length
            ? h('table', {},
              h('caption', { class: 'visually-hidden' }, `Deliveries to ${hook.url}`),
              h('thead', {}, h('tr', {}, ['Event', 'Attempt', 'Result', 'When'].map((c) => h('th', { scope: 'col' }, c)))),
              h('tbody', {}, answer.items.map((d) => h('tr', {},
                h('td', {}, d.event_type),
                h('td', {}, String(d.attempt)),
                h('td', {}, d.state, d.status_code ? ` (${d.status_code})` : '', d.error ? `: ${d.error}` : ''),
                h('td', {}, when(d.attempted_at))))))
            : h('p', { class: 'hint' }, 'No deliveries yet.'));
        } catch (error) {
          deliveries.replaceChildren(h('p', { class: 'error' }, error.message));
        }
      },
    }, 'Deliveries');
    const remove = h('button', {
      type: 'button', class: 'danger', 'aria-label': `Delete webhook ${hook.url}`,
      onclick: async () => {
        try {
          await api('DELETE', `/api/v1/webhooks/${hook.id}`);
          say(status, 'Webhook deleted.');
          await load();
        } catch (error) {
          say(status, error.message, true);
        }
      },
    }, 'Delete');
    return h('li', {}, h('strong', {}, hook.url),
      h('p', { class: 'hint' }, hook.events.join(', '), ' · added ', when(hook.created_at)),
      h('div', { class: 'row' }, show, remove), deliveries);
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const url = form.elements.url.value.trim();
    const events = [...form.querySelectorAll('input[name="events"]:checked')].map((c) => c.value);
    $('#webhook-secret').replaceChildren();
    try {
      const hook = await api('POST', '/api/v1/webhooks', { url, events });
      // The secret stays out of the live region: a screen reader should not read it out.
      say(status, 'Webhook added. Its signing secret is below; it is shown only now.');
      $('#webhook-secret').replaceChildren(h('code', { class: 'secret' }, hook.secret));
      form.elements.url.value = '';
      await load();
    } catch (error) {
      say(status, `Not added: ${error.message}`, true);
    }
  });
  load().catch((error) => say(status, `Could not load webhooks: ${error.message}`, true));
}

function keys($) {
  const list = $('#keys');
  const status = $('#key-status');

  async function load() {
    const answer = await api('GET', '/api/v1/api-keys');
    list.replaceChildren(...answer.items.map((key) => h('li', {},
      h('strong', {}, key.name), ' ', h('code', {}, `${key.prefix}…`),
      h('p', { class: 'hint' }, 'Created ', when(key.created_at),
        key.last_used_at ? [' · last used ', when(key.last_used_at)] : ' · never used'),
      h('button', {
        type: 'button', class: 'danger', 'aria-label': `Revoke ${key.name}`,
        onclick: async () => {
          try {
            await api('DELETE', `/api/v1/api-keys/${key.id}`);
            say(status, `Key ${key.name} revoked.`);
            await load();
          } catch (error) {
            say(status, error.message, true);
          }
        },
      }, 'Revoke'))));
    if (answer.items.length === 0) list.append(h('li', { class: 'hint' }, 'No API keys yet.'));
  }

  $('#key-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = event.target.elements.name.value.trim();
    $('#key-secret').replaceChildren();
    try {
      const key = await api('POST', '/api/v1/api-keys', { name });
      const copied = await copy(key.key);
      say(status, `Key ${key.name} created${copied ? ' and copied to the clipboard' : ''}. It is below; it is shown only now.`);
      $('#key-secret').replaceChildren(h('code', { class: 'secret', id: 'new-key' }, key.key));
      event.target.reset();
      await load();
    } catch (error) {
      say(status, `Not created: ${error.message}`, true);
    }
  });
  load().catch((error) => say(status, `Could not load keys: ${error.message}`, true));
}
