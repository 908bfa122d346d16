// The Admin section, for system administrators (the API refuses everyone else anyway): find
// users as you type, a user's page (account, live sessions, history; end sessions, disable,
// change the role) and an overview of the last 24 hours as charts. See README.md.

import { isAborted } from './api.js';
import { barList, columnChart, responsive } from './chart.js';
import { h, icon, mount, reconcile, showList } from './dom.js';
import {
  KIND_LABELS,
  ROLE_LABELS,
  ago,
  dateTime,
  deviceDetail,
  deviceTitle,
  endedReason,
  lastAdminMessage,
  problemMessage,
  roleLabel,
  timeAgo,
} from './format.js';

const PAGE_SIZE = 20;
/** Typing waits this long for the next key before it searches. */
const DEBOUNCE_MS = 250;

/** Shorter names where room is scarce (the overview's bars). */
const ROLE_SHORT = { guest: 'Guest', hotel_employee: 'Hotel employee', vendor_admin: 'Vendor admin', system_admin: 'System admin' };

/** The overview groups the reasons a session ended into a few colours; the list names each. */
const ENDED_GROUPS = [
  { key: 'signed-out', name: 'Signed out', reasons: ['user_logout', 'ended_from_other_device', 'user_logout_all'] },
  { key: 'expired', name: 'Expired', reasons: ['expired'] },
  { key: 'limit', name: 'Too many devices', reasons: ['max_sessions_exceeded'] },
  { key: 'account', name: 'Account changed', reasons: ['password_changed', 'role_changed', 'account_disabled'] },
  { key: 'admin', name: 'By an admin', reasons: ['admin_revoked'] },
  { key: 'theft', name: 'Token reused', reasons: ['refresh_token_reuse'] },
];

/** The query of the last search (`?email=…`), so that "All users" goes back to it. */
let lastSearch = '';

function hashQuery() {
  return new URLSearchParams(location.hash.split('?')[1] ?? '');
}

function statusChip(active) {
  return active
    ? h('span', { class: 'chip chip-active' }, 'Active')
    : h('span', { class: 'chip chip-disabled' }, 'Disabled');
}

/** An e-mail address that wraps before its "@" first, where it must wrap. */
function emailNodes(email) {
  const at = email.lastIndexOf('@');
  return at > 0 ? [email.slice(0, at), h('wbr'), email.slice(at)] : [email];
}

function showMessage(node, message) {
  node.textContent = message;
  node.hidden = !message;
}

/** The three admin views, drawn with the helpers of app.js (`ui`). */
export function adminViews(ui) {
  const title = () => document.getElementById('page-title');

  /** The signed-in user when a system admin; else explains, and returns null. */
  async function adminOnly() {
    const hash = location.hash;
    const me = await ui.currentUser();
    // Signed out meanwhile, or the user went elsewhere while we asked.
    if (!me || location.hash !== hash) return null;
    if (me.role === 'system_admin') return me;
    mount(
      ui.main,
      h(
        'section',
        { class: 'page', 'aria-labelledby': 'page-title' },
        ui.pageHead('Admin'),
        h(
          'div',
          { class: 'state', id: 'not-admin' },
          h('p', {}, 'The Admin section is for system administrators.'),
          h('p', {}, h('a', { href: '#/sessions' }, 'Back to your sessions')),
        ),
      ),
    );
    ui.focusOn(title());
    return null;
  }

  function subnav(current) {
    const link = (href, name, text) =>
      h('a', { href, 'data-subnav': name, 'aria-current': current === name ? 'page' : current.startsWith(name) ? 'true' : null }, text);
    return h(
      'nav',
      { class: 'subnav', 'aria-label': 'Admin' },
      link(`#/admin${lastSearch}`, 'users', 'Users'),
      link('#/admin/overview', 'overview', 'Overview'),
    );
  }

  function page(...children) {
    return h('section', { class: 'page page-admin', 'aria-labelledby': 'page-title' }, children);
  }

  // -------------------------------------------------------------------------------------
  // Users: search as you type

  async function searchView() {
    if (!(await adminOnly())) return;
    const query = hashQuery();
    const option = (value, text, selected) => h('option', { value, selected: selected === value }, text);
    const email = h('input', {
      id: 'user-search-email',
      name: 'email',
      type: 'search',
      autocomplete: 'off',
      autocapitalize: 'none',
      spellcheck: 'false',
      enterkeyhint: 'search',
      'aria-describedby': 'user-search-hint',
      'aria-controls': 'user-results',
      value: query.get('email') ?? '',
    });
    const role = h(
      'select',
      { id: 'user-search-role', name: 'role', 'aria-controls': 'user-results' },
      option('', 'Any role', query.get('role') ?? ''),
      Object.entries(ROLE_LABELS).map(([value, text]) => option(value, text, query.get('role'))),
    );
    const active = h(
      'select',
      { id: 'user-search-active', name: 'is_active', 'aria-controls': 'user-results' },
      option('', 'Any status', query.get('is_active') ?? ''),
      option('true', 'Active', query.get('is_active')),
      option('false', 'Disabled', query.get('is_active')),
    );
    const form = h(
      'form',
      { class: 'card search-form', id: 'user-search', role: 'search', 'aria-label': 'Users' },
      h(
        'div',
        { class: 'field search-email' },
        h('label', { for: 'user-search-email' }, 'E-mail starts with'),
        email,
        h('p', { class: 'field-hint', id: 'user-search-hint' }, 'Results follow as you type; the down arrow key moves to them.'),
      ),
      h('div', { class: 'field' }, h('label', { for: 'user-search-role' }, 'Role'), role),
      h('div', { class: 'field' }, h('label', { for: 'user-search-active' }, 'Status'), active),
    );
    // Says how many were found: polite, so that it waits for the typing to pause.
    const count = h('p', { class: 'search-count', id: 'user-search-count', role: 'status' });
    const failure = h('p', { class: 'form-error', id: 'user-search-error', role: 'alert', hidden: true });
    const results = h('div', { class: 'list-region', id: 'user-results' });
    const more = h('button', { type: 'button', class: 'button', id: 'load-more', hidden: true }, 'Load more');
    mount(
      ui.main,
      page(
        subnav('users'),
        ui.pageHead('Users'),
        h('p', { class: 'lead' }, 'Find an account, then open it to see its sessions and act on them.'),
        form,
        count,
        failure,
        results,
        h('div', { class: 'page-foot page-foot-center' }, more),
      ),
    );

    let users = [];
    let nextToken = null;
    let timer = 0;
    let running = null; // the AbortController of the search in flight
    const filters = () => {
      const params = new URLSearchParams();
      if (email.value.trim()) params.set('email', email.value.trim());
      if (role.value) params.set('role', role.value);
      if (active.value) params.set('is_active', active.value);
      return params;
    };
    const draw = () => {
      if (users.length === 0) {
        results.replaceChildren();
        return;
      }
      const rows = h('tbody', {}, users.map(userRow));
      const shown = results.querySelector('tbody');
      if (shown) reconcile(shown, rows);
      else mount(results, usersTable(rows));
    };
    // Each search abandons the one before: a slow earlier answer never replaces a later one.
    const search = async ({ next = false } = {}) => {
      clearTimeout(timer);
      running?.abort();
      const mine = new AbortController();
      running = mine;
      const wanted = filters();
      // The address keeps the search: a reload, or back from a user's page, shows it again.
      lastSearch = wanted.size ? `?${wanted}` : '';
      history.replaceState(null, '', `#/admin${lastSearch}`);
      ui.main.querySelector('[data-subnav="users"]')?.setAttribute('href', `#/admin${lastSearch}`);
      const call = new URLSearchParams(wanted);
      call.set('page_size', String(PAGE_SIZE));
      if (next && nextToken) call.set('page_token', nextToken);
      results.setAttribute('aria-busy', 'true');
      try {
        const found = await ui.guarded(() => ui.client.api(`/admin/users?${call}`, { signal: mine.signal }));
        if (!found || running !== mine) return;
        const before = users.length;
        users = next ? [...users, ...found.items] : found.items;
        nextToken = found.next_page_token ?? null;
        showMessage(failure, '');
        ui.keepingFocus(results, () => email, draw);
        more.hidden = !nextToken;
        count.textContent = countText(users.length, !!nextToken);
        // "Load more": the focus goes to the first user it brought.
        if (next) {
          const first = results.querySelectorAll('.user-link')[before];
          if (first) first.focus();
          else if (ui.focusLost()) email.focus();
        }
      } catch (error) {
        if (isAborted(error) || running !== mine) return;
        showMessage(failure, `Could not search. ${problemMessage(error.problem)}`);
      } finally {
        if (running === mine) results.removeAttribute('aria-busy');
      }
    };

    email.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => search(), DEBOUNCE_MS);
    });
    // Down from the field to the results, and up and down between them.
    email.addEventListener('keydown', (event) => {
      if (event.key !== 'ArrowDown') return;
      const first = results.querySelector('.user-link');
      if (!first) return;
      event.preventDefault();
      first.focus();
    });
    results.addEventListener('keydown', (event) => {
      if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
      const links = [...results.querySelectorAll('.user-link')];
      const at = links.indexOf(document.activeElement);
      if (at < 0) return;
      event.preventDefault();
      const to = at + (event.key === 'ArrowDown' ? 1 : -1);
      if (to < 0) email.focus();
      else links[Math.min(to, links.length - 1)].focus();
    });
    role.addEventListener('change', () => search());
    active.addEventListener('change', () => search());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      search();
    });
    more.addEventListener('click', () => search({ next: true }));
    ui.onLeave(() => {
      clearTimeout(timer);
      running?.abort();
    });

    email.focus();
    await search();
    // Nothing here changes by itself, but a device signed out elsewhere still notices.
    ui.startChecks(results, () => ui.guarded(() => ui.client.api('/sessions/current', { background: true })));
  }

  function countText(n, more) {
    if (n === 0) return 'No user matches.';
    const users = n === 1 ? '1 user' : `${n} users`;
    return more ? `${users} shown; there are more.` : `${users}.`;
  }

  function usersTable(rows) {
    return h(
      'table',
      { class: 'data-table users-table', id: 'user-table' },
      h('caption', { class: 'visually-hidden' }, 'Users found'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'E-mail'),
          h('th', { scope: 'col' }, 'Role'),
          h('th', { scope: 'col' }, 'Status'),
          h('th', { scope: 'col' }, 'Created'),
        ),
      ),
      rows,
    );
  }

  function userRow(user) {
    return h(
      'tr',
      { 'data-key': user.id, 'data-user-id': user.id },
      h('th', { scope: 'row', class: 'cell-email' }, h('a', { href: `#/admin/users/${encodeURIComponent(user.id)}`, class: 'user-link' }, emailNodes(user.email))),
      h('td', { 'data-label': 'Role' }, roleLabel(user.role)),
      h('td', { 'data-label': 'Status' }, statusChip(user.is_active)),
      h('td', { 'data-label': 'Created' }, ui.when(user.created_at, dateTime(user.created_at))),
    );
  }

  // -------------------------------------------------------------------------------------
  // A user's page

  async function userView() {
    const id = decodeURIComponent(location.hash.replace(/^#\/?admin\/users\//, '').split('?')[0]);
    const me = await adminOnly();
    if (!me) return;
    const facts = h('dl', { class: 'account-facts', id: 'account-facts' });
    const roleSelect = h(
      'select',
      { id: 'role-select', name: 'role' },
      Object.entries(ROLE_LABELS).map(([value, text]) => h('option', { value }, text)),
    );
    const changeRole = h('button', { type: 'submit', class: 'button', id: 'change-role' }, 'Change role');
    const roleForm = h(
      'form',
      { class: 'role-form', id: 'role-form' },
      h('label', { for: 'role-select' }, 'New role'),
      h('div', { class: 'role-row' }, roleSelect, changeRole),
    );
    const toggle = h('button', { type: 'button', class: 'button button-danger-quiet', id: 'toggle-active' }, 'Disable account');
    const endAll = h('button', { type: 'button', class: 'button button-danger-quiet', id: 'end-all-sessions', hidden: true }, 'End all sessions');
    const problem = h('p', { class: 'form-error', id: 'account-error', role: 'alert', hidden: true });
    const account = h(
      'section',
      { class: 'card account-card', 'aria-labelledby': 'account-title', id: 'account', hidden: true },
      h('h2', { id: 'account-title', class: 'section-title' }, 'Account'),
      facts,
      h('div', { class: 'account-actions' }, roleForm, h('div', { class: 'account-buttons' }, toggle, endAll)),
      problem,
    );
    const liveTitle = h('h2', { id: 'live-title', class: 'section-title', tabindex: '-1' }, 'Live sessions');
    const live = h('div', { class: 'list-region', id: 'live-region' }, h('p', { class: 'loading' }, 'Loading…'));
    const past = h('div', { class: 'list-region', id: 'user-history-region' });
    const status = h('p', { class: 'visually-hidden', role: 'status', id: 'user-status' });
    const body = page(
      subnav('users/user'),
      h('p', { class: 'back' }, h('a', { href: `#/admin${lastSearch}`, id: 'back-to-users' }, '← All users')),
      ui.pageHead('User'),
      account,
      h('section', { class: 'user-part', 'aria-labelledby': 'live-title', id: 'live' }, liveTitle, live),
      h(
        'section',
        { class: 'user-part', 'aria-labelledby': 'user-history-title', id: 'user-history' },
        h('h2', { id: 'user-history-title', class: 'section-title' }, 'History'),
        past,
      ),
      status,
    );
    mount(ui.main, body);

    let detail = null; // the last answer of GET /admin/users/{id}
    let shownRole = null; // the role the select showed last: a choice not yet made is kept
    let loads = 0;
    const self = () => detail?.user.id === me.id;
    const selfNote = () => (self() ? ' This is your own account: this device is signed out too.' : '');

    const draw = () => {
      const { user, live_sessions: sessions, history: ended } = detail;
      account.hidden = false;
      if (title().textContent !== user.email) mount(title(), emailNodes(user.email));
      document.title = `${user.email} · Admin · sessiond`;
      mount(
        facts,
        fact('Role', roleLabel(user.role)),
        fact('Status', statusChip(user.is_active)),
        user.hotel_id === null || user.hotel_id === undefined ? null : fact('Hotel', String(user.hotel_id)),
        fact('Created', ui.when(user.created_at, dateTime(user.created_at))),
        fact('User id', h('code', {}, user.id)),
      );
      if (roleSelect.value === shownRole || roleSelect.value === user.role || shownRole === null) roleSelect.value = user.role;
      shownRole = user.role;
      toggle.textContent = user.is_active ? 'Disable account' : 'Enable account';
      toggle.className = user.is_active ? 'button button-danger-quiet' : 'button';
      endAll.hidden = sessions.length === 0;
      liveTitle.textContent = `Live sessions (${sessions.length})`;
      const now = Date.now();
      if (sessions.length === 0) {
        mount(live, h('div', { class: 'state', id: 'live-empty' }, h('p', {}, 'No live sessions.')));
      } else {
        showList(live, h('ul', { class: 'session-list', id: 'live-list' }, sessions.map((s) => liveRow(s, now, endOne))));
      }
      if (ended.length === 0) {
        mount(past, h('div', { class: 'state', id: 'user-history-empty' }, h('p', {}, 'No ended sessions in the retention period.')));
      } else {
        showList(past, h('ul', { class: 'session-list', id: 'user-history-list' }, ended.map((s) => ui.historyRow(s, now))));
      }
    };

    const load = async ({ background = false } = {}) => {
      const mine = ++loads;
      if (!background) live.setAttribute('aria-busy', 'true');
      try {
        const got = await ui.guarded(() => ui.client.api(`/admin/users/${encodeURIComponent(id)}`, { background }));
        if (!got || mine !== loads || !ui.main.contains(body)) return;
        const before = detail?.live_sessions.length;
        detail = got;
        ui.keepingFocus(body, () => liveTitle, draw);
        if (before !== detail.live_sessions.length) {
          const n = detail.live_sessions.length;
          status.textContent = n === 1 ? '1 live session.' : `${n} live sessions.`;
        }
      } catch (failure) {
        if (mine !== loads || !ui.main.contains(body)) return;
        if (background) throw failure;
        const code = failure.problem?.code;
        if (code === 'not_found' || failure.problem?.status === 400) {
          mount(
            ui.main,
            page(
              subnav('users/user'),
              ui.pageHead('No such user'),
              h(
                'div',
                { class: 'state', id: 'no-such-user' },
                h('p', {}, 'This account does not exist (any more).'),
                h('p', {}, h('a', { href: `#/admin${lastSearch}` }, 'Back to the users')),
              ),
            ),
          );
          ui.focusOn(title());
          return;
        }
        mount(live, ui.errorState(`Could not load this user. ${problemMessage(failure.problem)}`, () => load()));
      } finally {
        if (!background && mine === loads) live.removeAttribute('aria-busy');
      }
    };

    /**
     * Runs `work` with `button` disabled; then the focus goes back to the button, or to
     * `fallback()` when the button went away (a row ended, "End all" hidden).
     */
    const withButton = async (button, fallback, work) => {
      button.disabled = true;
      try {
        await work();
      } finally {
        button.disabled = false;
        if (ui.main.contains(body) && ui.focusLost()) {
          ui.focusOn(body.contains(button) && !button.closest('[hidden]') ? button : fallback());
        }
      }
    };

    const explain = (failure, what) => {
      const code = failure.problem?.code;
      problem.dataset.code = code ?? '';
      showMessage(problem, code === 'last_admin' ? lastAdminMessage(detail.user.email) : `${what} ${problemMessage(failure.problem)}`);
    };

    const call = (path, options) => ui.guarded(() => ui.client.api(path, options));

    async function endOne(session, button) {
      const device = deviceTitle(session);
      const own = session.is_current ? ' It is the session of this device: you are signed out.' : '';
      const yes = await ui.confirm({
        title: 'End this session?',
        text: `${device} of ${detail.user.email} is signed out at once and must sign in again.${own}`,
        ok: 'End session',
      });
      if (!yes) return;
      await withButton(button, () => liveTitle, async () => {
        try {
          if ((await call(`/admin/sessions/${encodeURIComponent(session.id)}`, { method: 'DELETE' })) === null) return;
          showMessage(problem, '');
          ui.toast(`Ended the session on ${device}.`);
        } catch (failure) {
          explain(failure, 'Could not end that session.');
        }
        await load();
      });
    }

    endAll.addEventListener('click', async () => {
      const n = detail.live_sessions.length;
      const yes = await ui.confirm({
        title: `End all sessions of ${detail.user.email}?`,
        text: `${n === 1 ? 'Its device is' : `Its ${n} devices are`} signed out at once and must sign in again. The account stays enabled.${selfNote()}`,
        ok: 'End all sessions',
      });
      if (!yes) return;
      await withButton(endAll, () => liveTitle, async () => {
        try {
          const ended = await call(`/admin/users/${encodeURIComponent(id)}/sessions`, { method: 'DELETE' });
          if (ended === null) return;
          showMessage(problem, '');
          const count = ended.revoked ?? 0;
          ui.toast(count === 1 ? 'Ended 1 session.' : `Ended ${count} sessions.`);
        } catch (failure) {
          explain(failure, 'Could not end the sessions.');
        }
        await load();
      });
    });

    const change = async (body, done, what) => {
      try {
        if ((await call(`/admin/users/${encodeURIComponent(id)}`, { method: 'PATCH', body })) === null) return;
        showMessage(problem, '');
        ui.toast(done);
      } catch (failure) {
        explain(failure, what);
        // A refused role change shows the role the account still has.
        if (body.role) roleSelect.value = detail.user.role;
      }
      await load();
    };

    toggle.addEventListener('click', async () => {
      const { email, is_active: enabled } = detail.user;
      if (enabled) {
        const yes = await ui.confirm({
          title: `Disable ${email}?`,
          text: `Every session of this account ends now, and it cannot sign in until it is enabled again.${selfNote()}`,
          ok: 'Disable account',
        });
        if (!yes) return;
      }
      await withButton(toggle, title, () =>
        enabled
          ? change({ is_active: false }, `Disabled ${email}; its sessions ended.`, 'Could not disable the account.')
          : change({ is_active: true }, `Enabled ${email}.`, 'Could not enable the account.'),
      );
    });

    roleForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      const { email, role } = detail.user;
      const next = roleSelect.value;
      if (next === role) {
        problem.dataset.code = '';
        showMessage(problem, `${email} is already a ${roleLabel(role).toLowerCase()}: choose another role first.`);
        return;
      }
      const yes = await ui.confirm({
        title: 'Change the role?',
        text: `${email} becomes ${roleLabel(next).toLowerCase()}. Every session of this account ends; the next sign-in carries the new role.${selfNote()}`,
        ok: 'Change role',
      });
      if (!yes) return;
      await withButton(changeRole, title, () => change({ role: next }, `${email} is now ${roleLabel(next).toLowerCase()}.`, 'Could not change the role.'));
    });

    ui.focusOn(title());
    await load();
    // The lists follow the user's devices: a sign-in or a sign-out shows up by itself.
    ui.startChecks(live, () => load({ background: true }));
  }

  function fact(name, value) {
    return h('div', { class: 'account-fact' }, h('dt', {}, name), h('dd', {}, value));
  }

  function liveRow(session, now, endOne) {
    const kind = session.device_kind in KIND_LABELS ? session.device_kind : 'other';
    const device = deviceTitle(session);
    const detail = deviceDetail(session);
    const titleId = `live-${session.id}`;
    return h(
      'li',
      { class: `session${session.is_current ? ' session-current' : ''}`, 'data-session-id': session.id, 'data-key': session.id, 'aria-labelledby': titleId },
      h('div', { class: 'session-icon' }, icon(kind, KIND_LABELS[kind])),
      h(
        'div',
        { class: 'session-main' },
        h('p', { class: 'session-title' }, h('span', { id: titleId, class: 'session-name' }, device)),
        detail ? h('p', { class: 'session-detail' }, detail) : null,
        ui.facts('session-facts', session.ip_address ? `IP ${session.ip_address}` : null, [
          'Last active ',
          ui.when(session.last_activity, timeAgo(session.last_activity, now)),
        ]),
        ui.facts(
          'session-since',
          ['Signed in ', ui.when(session.created_at, dateTime(session.created_at))],
          ['Expires ', ui.when(session.expires_at, dateTime(session.expires_at))],
        ),
      ),
      h(
        'div',
        { class: 'session-action' },
        session.is_current
          ? h('span', { class: 'chip', 'data-current': 'true' }, 'This device')
          : h(
              'button',
              {
                type: 'button',
                class: 'button button-quiet session-end',
                'aria-label': `End the session on ${device}`,
                onclick: (event) => endOne(session, event.currentTarget),
              },
              'End session',
            ),
      ),
    );
  }

  // -------------------------------------------------------------------------------------
  // Overview: the last 24 hours

  async function overviewView() {
    if (!(await adminOnly())) return;
    const refresh = h(
      'button',
      { type: 'button', class: 'button', id: 'refresh-stats', 'aria-controls': 'stats-region' },
      icon('refresh'),
      h('span', {}, 'Refresh'),
    );
    const lead = h('p', { class: 'lead', id: 'stats-lead' }, 'The last 24 hours, hour by hour.');
    const region = h('div', { class: 'stats', id: 'stats-region' }, h('p', { class: 'loading' }, 'Loading the statistics…'));
    const body = page(subnav('overview'), ui.pageHead('Overview', refresh), lead, region);
    mount(ui.main, body);

    let charts = []; // what stops the charts' resize watchers
    const stopCharts = () => {
      for (const stop of charts.splice(0)) stop();
    };
    ui.onLeave(stopCharts);
    let loads = 0;
    const load = async () => {
      const mine = ++loads;
      region.setAttribute('aria-busy', 'true');
      try {
        const stats = await ui.guarded(() => ui.client.api('/admin/stats'));
        if (!stats || mine !== loads || !ui.main.contains(body)) return;
        // Keep the tables that were open across a refresh.
        const open = new Set([...region.querySelectorAll('details[open]')].map((d) => d.id));
        ui.keepingFocus(region, title, () => {
          stopCharts();
          charts = drawStats(region, stats, open);
        });
        const updated = ago(stats.generated_at) ?? dateTime(stats.generated_at);
        mount(lead, 'The last 24 hours, hour by hour. Updated ', ui.when(stats.generated_at, updated), '.');
      } catch (failure) {
        if (mine !== loads || !ui.main.contains(body)) return;
        stopCharts();
        mount(region, ui.errorState(`Could not load the statistics. ${problemMessage(failure.problem)}`, () => load()));
      } finally {
        if (mine === loads) region.removeAttribute('aria-busy');
      }
    };
    refresh.addEventListener('click', () => load());
    ui.focusOn(title());
    await load();
    ui.startChecks(region, () => ui.guarded(() => ui.client.api('/sessions/current', { background: true })));
  }

  /** Draws the three charts into `region`; returns the functions that stop their watchers. */
  function drawStats(region, stats, open) {
    const byRole = Object.keys(ROLE_LABELS).map((role) => ({
      name: ROLE_SHORT[role],
      value: stats.live_sessions_by_role?.[role] ?? 0,
      className: 'series-role',
    }));
    const live = byRole.reduce((sum, row) => sum + row.value, 0);
    const hours = stats.hours ?? [];
    const columns = hours.map((hour) => ({ short: hourLabel(hour.hour), long: hourRange(hour.hour) }));
    const signIns = hours.map((hour) => hour.sign_ins ?? 0);
    const failed = hours.map((hour) => hour.failed_sign_ins ?? 0);
    const sum = (values) => values.reduce((a, b) => a + b, 0);

    // Reasons no group names (a newer server's) get a group of their own.
    const known = new Set(ENDED_GROUPS.flatMap((group) => group.reasons));
    const reasons = new Map();
    for (const hour of hours) {
      // The API lists every reason, zeros included: only those that happened count here.
      for (const [reason, n] of Object.entries(hour.ended ?? {})) {
        if (n > 0) reasons.set(reason, (reasons.get(reason) ?? 0) + n);
      }
    }
    const other = [...reasons.keys()].filter((reason) => !known.has(reason));
    const groups = other.length ? [...ENDED_GROUPS, { key: 'other', name: 'Other', reasons: other }] : ENDED_GROUPS;
    const ended = groups.map((group) => ({
      name: group.name,
      className: `series-${group.key}`,
      values: hours.map((hour) => group.reasons.reduce((n, reason) => n + (hour.ended?.[reason] ?? 0), 0)),
    }));
    const endedTotal = sum(ended.map((series) => sum(series.values)));

    const roleBox = h('div', { class: 'chart-box', id: 'chart-roles' });
    const signInBox = h('div', { class: 'chart-box', id: 'chart-sign-ins' });
    const endedBox = h('div', { class: 'chart-box', id: 'chart-ended' });
    const signInSeries = [
      { name: 'Sign-ins', className: 'series-sign-in', values: signIns },
      { name: 'Failed', className: 'series-failed', values: failed },
    ];
    mount(
      region,
      h(
        'section',
        { class: 'card chart-card', 'aria-labelledby': 'roles-title' },
        h('h2', { class: 'section-title', id: 'roles-title' }, `Live sessions: ${live}`),
        h('p', { class: 'chart-note' }, 'By role, now.'),
        roleBox,
      ),
      h(
        'section',
        { class: 'card chart-card', 'aria-labelledby': 'sign-ins-title' },
        h('h2', { class: 'section-title', id: 'sign-ins-title' }, 'Sign-ins per hour'),
        h('p', { class: 'chart-note' }, `${sum(signIns)} signed in, ${sum(failed)} failed in 24 hours.`),
        legend(signInSeries),
        signInBox,
        numbers('sign-ins-table', 'The numbers, hour by hour', columns, signInSeries, open),
      ),
      h(
        'section',
        { class: 'card chart-card', 'aria-labelledby': 'ended-title' },
        h('h2', { class: 'section-title', id: 'ended-title' }, 'Sessions ended per hour'),
        h('p', { class: 'chart-note' }, `${endedTotal} ended in 24 hours.`),
        legend(ended),
        endedBox,
        reasons.size
          ? h(
              'ul',
              { class: 'reason-totals', 'aria-label': 'Ended in 24 hours, by reason' },
              [...reasons.entries()]
                .sort((a, b) => b[1] - a[1])
                .map(([reason, n]) => h('li', { 'data-reason': reason }, h('span', {}, endedReason(reason)), h('span', { class: 'reason-count' }, n))),
            )
          : null,
        numbers('ended-table', 'The numbers, hour by hour', columns, ended, open),
      ),
    );
    const labelEvery = (width) => (width < 480 ? 6 : 3);
    return [
      responsive(roleBox, (width) =>
        barList({ width, rows: byRole, label: `Live sessions by role: ${byRole.map((row) => `${row.name} ${row.value}`).join(', ')}.` }),
      ),
      responsive(signInBox, (width) =>
        columnChart({
          width,
          columns,
          series: signInSeries,
          labelEvery: labelEvery(width),
          label: `Sign-ins per hour over the last 24 hours, ${sum(signIns)} successful and ${sum(failed)} failed. The table below has each hour.`,
        }),
      ),
      responsive(endedBox, (width) =>
        columnChart({
          width,
          columns,
          series: ended,
          labelEvery: labelEvery(width),
          label: `Sessions ended per hour over the last 24 hours, ${endedTotal} in all. The table below has each hour.`,
        }),
      ),
    ];
  }

  function legend(series) {
    return h(
      'ul',
      { class: 'legend', 'aria-hidden': 'true' },
      series.map((s) => h('li', {}, h('span', { class: `swatch ${s.className}` }), s.name)),
    );
  }

  /** A chart's numbers as a table, folded away (what a screen reader or a keyboard reads). */
  function numbers(id, summary, columns, series, open) {
    return h(
      'details',
      { class: 'chart-numbers', id, open: open.has(id) },
      h('summary', {}, summary),
      h(
        'div',
        { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': summary },
        h(
          'table',
          { class: 'data-table numbers-table' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Hour'), series.map((s) => h('th', { scope: 'col' }, s.name)))),
          h(
            'tbody',
            {},
            columns.map((column, i) =>
              h('tr', {}, h('th', { scope: 'row' }, column.long), series.map((s) => h('td', {}, s.values[i] ?? 0))),
            ),
          ),
        ),
      ),
    );
  }

  return { admin: searchView, 'admin/user': userView, 'admin/overview': overviewView };
}

/** "3 PM" (or "15", as the locale writes hours). */
function hourLabel(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: 'numeric' });
}

/** "Dec 2, 3:00 PM – 4:00 PM". */
function hourRange(iso) {
  const start = new Date(iso);
  const end = new Date(start.getTime() + 3600 * 1000);
  const time = { hour: 'numeric', minute: '2-digit' };
  return `${start.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })}, ${start.toLocaleTimeString(undefined, time)} – ${end.toLocaleTimeString(undefined, time)}`;
}
