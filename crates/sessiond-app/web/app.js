// The sessiond web UI: a few hash-routed views over the API (see README.md).

import { adminViews } from './admin.js';
import * as client from './api.js';
import { ApiProblem, SignedOut } from './api.js';
import { h, icon, mount, showList } from './dom.js';
import {
  KIND_LABELS,
  ago,
  dateTime,
  deviceDetail,
  deviceTitle,
  endedBy,
  endedReason,
  problemMessage,
  signedOutBecause,
  timeAgo,
} from './format.js';

const main = document.getElementById('main');
const topbar = document.getElementById('topbar');
const toastNode = document.getElementById('toast');
const dialog = document.getElementById('confirm-dialog');
const adminLink = document.querySelector('[data-nav="admin"]');

let user = null; // { id, email, role, ... } from GET /users/me
let notice = null; // a message for the sign-in page: why this device was signed out
let leaving = []; // what the view on screen must stop (timers) when another one replaces it

const PUBLIC = new Set(['sign-in', 'register']);
const TITLES = {
  'sign-in': 'Sign in',
  register: 'Create an account',
  sessions: 'Active sessions',
  history: 'Session history',
  password: 'Change password',
  admin: 'Users · Admin',
  'admin/user': 'User · Admin',
  'admin/overview': 'Overview · Admin',
};

/** The view of the address's hash: `#/<name>[?query]`; a user page is `#/admin/users/<id>`. */
function route() {
  const name = location.hash.replace(/^#\/?/, '').split('?')[0];
  if (/^admin\/users\/[^/]+$/.test(name)) return 'admin/user';
  return name in TITLES ? name : null;
}

function go(name) {
  if (route() === name) {
    render();
  } else {
    location.hash = `#/${name}`;
  }
}

let toastTimer = null;
function toast(message) {
  toastNode.textContent = message;
  toastNode.classList.add('toast-visible');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => toastNode.classList.remove('toast-visible'), 4000);
}

/** Runs `work`, turning a lost session into the sign-in page and returning null. */
async function guarded(work) {
  try {
    return await work();
  } catch (error) {
    if (error instanceof SignedOut) return null;
    throw error;
  }
}

client.onSignedOut(({ reason }) => {
  user = null;
  notice = reason ? signedOutBecause(reason) : notice;
  go('sign-in');
});

client.onSignedInElsewhere(async () => {
  if (await client.resume().catch(() => false)) go('sessions');
});

// ---------------------------------------------------------------------------------------
// Background checks: a device signed out elsewhere notices within seconds

// While the page is visible, the view on screen checks the session (and reloads what it
// shows) every CHECK_EVERY ms, and at once when the tab becomes visible again or gets the
// focus. A hidden tab checks nothing. These calls carry `X-Sessiond-Background: 1`.
const CHECK_EVERY = 5000;
const CHECK_GAP = 1000; // visibility and focus often come together: one check for both
let check = null; // the view's check: an async function
let checkTimer = null;
let checking = false;
let lastCheck = 0;

/** Starts the checks of the view that drew `node`, unless another view replaced it meanwhile. */
function startChecks(node, fn) {
  if (!main.contains(node)) return;
  check = fn;
  lastCheck = Date.now();
  scheduleChecks();
}

function stopChecks() {
  check = null;
  clearInterval(checkTimer);
  checkTimer = null;
}

function scheduleChecks() {
  clearInterval(checkTimer);
  checkTimer = null;
  if (check && document.visibilityState === 'visible') {
    checkTimer = setInterval(() => runCheck(0), CHECK_EVERY);
  }
}

async function runCheck(gap) {
  if (!check || checking || document.visibilityState !== 'visible') return;
  if (Date.now() - lastCheck < gap) return;
  checking = true;
  lastCheck = Date.now();
  try {
    await check();
  } catch {
    // A failed check changes nothing on screen; the next one tries again.
  } finally {
    checking = false;
  }
}

document.addEventListener('visibilitychange', () => {
  scheduleChecks();
  runCheck(CHECK_GAP);
});
window.addEventListener('focus', () => runCheck(CHECK_GAP));

// ---------------------------------------------------------------------------------------
// Focus

/** Puts the focus on `node` (a field, or a heading with tabindex="-1"). */
function focusOn(node) {
  node?.focus({ preventScroll: node.tagName === 'H1' });
}

/** Whether the focus fell out of the page: its element was removed, hidden or disabled. */
function focusLost() {
  const active = document.activeElement;
  return !active || active === document.body || !active.isConnected || active.disabled || !!active.closest('[hidden]');
}

/** A selector for the focused element's counterpart in a rebuilt list (rows have `data-key`). */
function focusKey(active) {
  const row = active.closest('[data-key]');
  if (!row) return null;
  const key = `[data-key="${CSS.escape(row.dataset.key)}"]`;
  if (active === row) return key;
  const classes = [...active.classList].map((c) => `.${CSS.escape(c)}`).join('');
  return `${key} ${active.tagName.toLowerCase()}${classes}`;
}

/**
 * Runs `work`, which rebuilds `region`. When the focus was in `region` and its element went
 * away, it moves to the same element in the new rows, else to `fallback()`. Focus elsewhere
 * is never touched: a periodic reload must not move it.
 */
function keepingFocus(region, fallback, work) {
  const active = document.activeElement;
  const inside = !!active && active !== document.body && region.contains(active);
  const again = inside ? focusKey(active) : null;
  work();
  if (!inside || !focusLost()) return;
  const same = again ? region.querySelector(again) : null;
  focusOn(same && !same.disabled ? same : fallback());
}

// ---------------------------------------------------------------------------------------
// Rendering

async function render() {
  stopChecks();
  for (const stop of leaving.splice(0)) stop();
  let name = route();
  if (!client.isSignedIn() && !(name && PUBLIC.has(name))) {
    name = 'sign-in';
  } else if (client.isSignedIn() && (!name || PUBLIC.has(name))) {
    name = 'sessions';
  }
  if (route() !== name) {
    history.replaceState(null, '', `#/${name}`);
  }
  document.title = `${TITLES[name]} · sessiond`;
  topbar.hidden = PUBLIC.has(name);
  // Until GET /users/me says otherwise (a new sign-in may be another user's).
  if (!user) adminLink.hidden = true;
  // Every page of a section marks its link (the Admin link for all three admin pages).
  const section = name.split('/')[0];
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const views = {
    'sign-in': signInView,
    register: registerView,
    sessions: sessionsView,
    history: historyView,
    password: passwordView,
    ...admin,
  };
  await views[name]();
}

function field({ id, label, type = 'text', autocomplete, required = true, hint, minlength }) {
  const hintId = hint ? `${id}-hint` : null;
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    h('input', { id, name: id, type, autocomplete, required, minlength, 'aria-describedby': hintId }),
    hint ? h('p', { class: 'field-hint', id: hintId }, hint) : null,
  );
}

function formError() {
  return h('p', { class: 'form-error', role: 'alert', id: 'form-error', hidden: true });
}

function showError(node, message) {
  node.textContent = message;
  node.hidden = !message;
}

/**
 * Disables a form's controls while `work` runs. Focus is moved only after this returns: a
 * disabled field cannot take it (it would fall to <body>).
 */
async function busy(form, work) {
  const controls = [...form.elements];
  for (const control of controls) control.disabled = true;
  form.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    for (const control of controls) control.disabled = false;
    form.removeAttribute('aria-busy');
  }
}

/**
 * Shows why `form`'s call failed. A 429 holds the submit button back for as long as the
 * answer said (`Retry-After`), counting down each second, and gives it back at 0; the
 * fields stay usable meanwhile. Then puts the focus on `field`.
 */
function showFailure(form, error, failure, field) {
  const problem = failure instanceof ApiProblem ? failure.problem : failure?.problem ?? null;
  if (problem?.code === 'rate_limited' && problem.retryAfter > 0) {
    holdOff(form, error, problem.retryAfter);
  } else {
    showError(error, problemMessage(problem));
  }
  field.focus();
  if (field.type === 'password') field.select();
}

function holdOff(form, error, seconds) {
  const submit = form.querySelector('[type="submit"]');
  const until = Date.now() + seconds * 1000;
  // The alert is read once; the seconds change quietly (a live region would read each one).
  const left = h('span', { 'aria-live': 'off', id: 'retry-after' });
  error.replaceChildren('Too many attempts. Try again in ', left, '.');
  error.hidden = false;
  submit.disabled = true;
  form.dataset.throttled = 'true';
  let timer = null;
  const stop = () => clearTimeout(timer);
  leaving.push(stop);
  const tick = () => {
    const remaining = until - Date.now();
    if (remaining > 0) {
      left.textContent = `${Math.ceil(remaining / 1000)}\u00a0s`;
      // Wake up as the next whole second is reached, so that no number is skipped.
      timer = setTimeout(tick, remaining % 1000 || 1000);
      return;
    }
    submit.disabled = false;
    delete form.dataset.throttled;
    showError(error, 'You can try again now.');
  };
  tick();
}

function signInView() {
  const error = formError();
  const form = h(
    'form',
    { class: 'card form', id: 'sign-in-form', novalidate: false },
    notice ? h('p', { class: 'notice', role: 'status', id: 'signed-out-notice' }, notice) : null,
    field({ id: 'email', label: 'E-mail', type: 'email', autocomplete: 'username' }),
    field({ id: 'password', label: 'Password', type: 'password', autocomplete: 'current-password' }),
    field({
      id: 'device-name',
      label: 'Name this device (optional)',
      autocomplete: 'off',
      required: false,
      hint: 'Shown in your list of sessions, e.g. "Work laptop".',
    }),
    error,
    h('button', { type: 'submit', class: 'button button-primary button-wide', id: 'sign-in-submit' }, 'Sign in'),
    h('p', { class: 'form-foot' }, 'New here? ', h('a', { href: '#/register', id: 'register-link' }, 'Create a guest account')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (form.dataset.throttled) return;
    showError(error, '');
    const data = new FormData(form);
    const failure = await busy(form, async () => {
      try {
        await client.signIn(String(data.get('email')).trim(), String(data.get('password')), String(data.get('device-name')).trim());
        return null;
      } catch (failure) {
        return failure;
      }
    });
    if (!failure) {
      notice = null;
      go('sessions');
      return;
    }
    const badEmail = failure.problem?.code === 'validation_failed' && /email/i.test(failure.problem.detail ?? '');
    showFailure(form, error, failure, badEmail ? form.elements.email : form.elements.password);
  });
  mount(main, h('section', { class: 'auth' }, h('h1', { class: 'auth-title' }, 'Sign in to sessiond'), form));
  form.elements.email.focus();
}

function registerView() {
  const error = formError();
  const form = h(
    'form',
    { class: 'card form', id: 'register-form' },
    field({ id: 'email', label: 'E-mail', type: 'email', autocomplete: 'username' }),
    field({ id: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', minlength: 8, hint: 'At least 8 characters.' }),
    field({ id: 'password-again', label: 'Repeat the password', type: 'password', autocomplete: 'new-password', minlength: 8 }),
    error,
    h('button', { type: 'submit', class: 'button button-primary button-wide' }, 'Create account'),
    h('p', { class: 'form-foot' }, 'Already registered? ', h('a', { href: '#/sign-in' }, 'Sign in')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(error, '');
    const data = new FormData(form);
    const email = String(data.get('email')).trim();
    const password = String(data.get('password'));
    if (password !== data.get('password-again')) {
      showError(error, 'The two passwords differ.');
      form.elements['password-again'].focus();
      return;
    }
    if (form.dataset.throttled) return;
    const failure = await busy(form, async () => {
      try {
        await client.register(email, password);
        await client.signIn(email, password);
        return null;
      } catch (failure) {
        return failure;
      }
    });
    if (!failure) {
      notice = null;
      go('sessions');
      return;
    }
    const aboutEmail = ['email_taken', 'validation_failed'].includes(failure.problem?.code) && /email|e-mail|registered/i.test(problemMessage(failure.problem));
    showFailure(form, error, failure, aboutEmail ? form.elements.email : form.elements.password);
  });
  mount(main, h('section', { class: 'auth' }, h('h1', { class: 'auth-title' }, 'Create a guest account'), form));
  form.elements.email.focus();
}

async function loadUser() {
  if (user) return;
  user = await client.api('/users/me');
  // The Admin section is offered to system administrators only (the API refuses others).
  adminLink.hidden = user.role !== 'system_admin';
  const email = document.getElementById('account-email');
  // Where a phone must wrap the address, it wraps before the "@" first.
  const at = user.email.lastIndexOf('@');
  mount(email, at > 0 ? [user.email.slice(0, at), h('wbr'), user.email.slice(at)] : user.email);
  email.title = user.email;
}

function pageHead(title, ...actions) {
  return h(
    'div',
    { class: 'page-head' },
    h('h1', { id: 'page-title', tabindex: '-1' }, title),
    actions.length ? h('div', { class: 'page-actions' }, actions) : null,
  );
}

function errorState(message, retry) {
  return h(
    'div',
    { class: 'state state-error', role: 'alert', id: 'error-state' },
    h('p', {}, message),
    h('button', { type: 'button', class: 'button', onclick: retry }, 'Try again'),
  );
}

/**
 * A line of facts separated by dots (drawn by the style sheet): a narrow screen wraps between
 * facts, and no line starts or ends with a dot.
 */
function facts(className, ...items) {
  const parts = items.filter((item) => item !== null && item !== undefined);
  return h('p', { class: `facts ${className}` }, h('span', { class: 'facts-inner' }, parts.map((item) => h('span', { class: 'fact' }, item, ' '))));
}

/** A point in time: the words on screen, the exact instant in `datetime` and a tooltip. */
function when(iso, words) {
  return h('time', { datetime: iso, title: dateTime(iso, { long: true }) }, words);
}

// ---------------------------------------------------------------------------------------
// Active sessions

async function sessionsView() {
  const list = h('div', { class: 'list-region', id: 'sessions-region' }, h('p', { class: 'loading' }, 'Loading sessions…'));
  const status = h('p', { class: 'visually-hidden', role: 'status', id: 'sessions-status' });
  const refresh = h(
    'button',
    { type: 'button', class: 'button', id: 'refresh-sessions', 'aria-controls': 'sessions-region' },
    icon('refresh'),
    h('span', {}, 'Refresh'),
  );
  const others = h(
    'button',
    { type: 'button', class: 'button button-danger-quiet', id: 'sign-out-others', hidden: true },
    'Sign out all other devices',
  );
  const title = () => document.getElementById('page-title');
  mount(
    main,
    h(
      'section',
      { class: 'page', 'aria-labelledby': 'page-title' },
      pageHead('Active sessions', refresh),
      h('p', { class: 'lead' }, 'Devices signed in to your account: this one first, then the others, most recently active first.'),
      list,
      status,
      h('div', { class: 'page-foot' }, others),
    ),
  );

  let sessions = [];
  let loads = 0; // the newest load wins when two overlap
  let loading = 0;
  const draw = () => {
    const now = Date.now();
    if (sessions.length === 0) {
      mount(list, h('div', { class: 'state', id: 'empty-state' }, h('p', {}, 'No active sessions.')));
    } else {
      showList(list, h('ul', { class: 'session-list', id: 'session-list' }, sessions.map((s) => sessionRow(s, now, signOutOne))));
    }
    // Only worth offering when there is another device to sign out.
    others.hidden = !sessions.some((s) => !s.is_current);
  };
  let asked = 0; // loads the user asked for, running (the list is busy meanwhile)
  // The Refresh button stays enabled while it works: disabling it would drop its focus.
  const load = async ({ background = false } = {}) => {
    const mine = ++loads;
    loading += 1;
    if (!background) {
      asked += 1;
      list.setAttribute('aria-busy', 'true');
    }
    try {
      await guarded(async () => {
        await loadUser();
        // The API lists the most recently active first; this device goes on top (it is the
        // one active right now, whatever a coalesced `last_activity` says).
        const listed = await client.api('/sessions', { background });
        if (mine !== loads) return;
        const before = sessions.length;
        sessions = [...listed.filter((s) => s.is_current), ...listed.filter((s) => !s.is_current)];
        keepingFocus(list, title, () => draw());
        if (!background || before !== sessions.length) {
          status.textContent = sessions.length === 1 ? '1 active session.' : `${sessions.length} active sessions.`;
        }
      });
    } catch (failure) {
      if (mine !== loads) return;
      // A failed background check leaves the list as it was; the next one tries again.
      if (background) throw failure;
      others.hidden = true;
      mount(list, errorState(`Could not load your sessions. ${problemMessage(failure.problem)}`, () => load()));
    } finally {
      loading -= 1;
      if (!background) {
        asked -= 1;
        if (asked === 0) list.removeAttribute('aria-busy');
      }
    }
  };
  const signOutOne = async (session, button) => {
    button.disabled = true;
    try {
      await guarded(async () => {
        await client.api(`/sessions/${encodeURIComponent(session.id)}`, { method: 'DELETE' });
        toast(`Signed out ${deviceTitle(session)}.`);
        await load();
      });
    } catch (failure) {
      button.disabled = false;
      toast(`Could not sign out that device. ${problemMessage(failure.problem)}`);
    }
    if (main.contains(list) && focusLost()) focusOn(title());
  };
  refresh.addEventListener('click', () => load());
  others.addEventListener('click', async () => {
    if (!(await confirmDialog())) return;
    others.disabled = true;
    try {
      await guarded(async () => {
        const result = await client.api('/sessions', { method: 'DELETE' });
        const count = result?.revoked ?? 0;
        toast(count === 1 ? 'Signed out 1 other device.' : `Signed out ${count} other devices.`);
        await load();
      });
    } catch (failure) {
      toast(`Could not sign out the other devices. ${problemMessage(failure.problem)}`);
      await load();
    } finally {
      others.disabled = false;
    }
    if (main.contains(list) && focusLost()) focusOn(title());
  });
  focusOn(title());
  await load();
  // Keeps "last active" honest and notices a session ended elsewhere (see startChecks).
  startChecks(list, () => (loading ? Promise.resolve() : load({ background: true })));
}

function sessionRow(session, now, signOutOne) {
  const kind = session.device_kind in KIND_LABELS ? session.device_kind : 'other';
  const title = deviceTitle(session);
  const detail = deviceDetail(session);
  const titleId = `session-${session.id}`;
  return h(
    'li',
    {
      class: `session${session.is_current ? ' session-current' : ''}`,
      'data-session-id': session.id,
      'data-key': session.id,
      'aria-labelledby': titleId,
    },
    h('div', { class: 'session-icon' }, icon(kind, KIND_LABELS[kind])),
    h(
      'div',
      { class: 'session-main' },
      h('p', { class: 'session-title' }, h('span', { id: titleId, class: 'session-name' }, title)),
      detail ? h('p', { class: 'session-detail' }, detail) : null,
      facts('session-facts', session.ip_address ? `IP ${session.ip_address}` : null, [
        'Last active ',
        when(session.last_activity, timeAgo(session.last_activity, now)),
      ]),
      facts('session-since', ['Signed in ', when(session.created_at, dateTime(session.created_at))]),
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
              class: 'button button-quiet session-sign-out',
              'aria-label': `Sign out ${title}`,
              onclick: (event) => signOutOne(session, event.currentTarget),
            },
            'Sign out',
          ),
    ),
  );
}

const confirmTitle = document.getElementById('confirm-title');
const confirmText = document.getElementById('confirm-text');
const confirmOk = document.getElementById('confirm-ok');
/** What the dialog says unless told otherwise: the question of the Active sessions page. */
const CONFIRM_DEFAULT = { title: confirmTitle.textContent, text: confirmText.textContent, ok: confirmOk.textContent };

/**
 * The confirm dialog, saying `title`, `text` and `ok` (its confirming button): resolves true
 * when the user confirms. Cancel has the focus first, so that Enter never destroys by accident.
 */
function confirmDialog({ title, text, ok } = CONFIRM_DEFAULT) {
  confirmTitle.textContent = title;
  confirmText.textContent = text;
  confirmOk.textContent = ok;
  return new Promise((resolve) => {
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
    dialog.showModal();
  });
}

// ---------------------------------------------------------------------------------------
// History

async function historyView() {
  const list = h('div', { class: 'list-region', id: 'history-region' }, h('p', { class: 'loading' }, 'Loading history…'));
  const title = () => document.getElementById('page-title');
  mount(
    main,
    h(
      'section',
      { class: 'page', 'aria-labelledby': 'page-title' },
      pageHead('Session history'),
      h('p', { class: 'lead' }, 'Sessions that ended recently, and why.'),
      list,
    ),
  );
  let loads = 0;
  const load = async ({ background = false } = {}) => {
    const mine = ++loads;
    try {
      await guarded(async () => {
        await loadUser();
        const ended = await client.api('/sessions/history', { background });
        if (mine !== loads) return;
        keepingFocus(list, title, () => {
          if (ended.length === 0) {
            mount(list, h('div', { class: 'state', id: 'empty-state' }, h('p', {}, 'No ended sessions yet.')));
            return;
          }
          showList(list, h('ul', { class: 'session-list', id: 'history-list' }, ended.map((s) => historyRow(s, Date.now()))));
        });
      });
    } catch (failure) {
      if (mine !== loads) return;
      if (background) throw failure;
      mount(list, errorState(`Could not load the history. ${problemMessage(failure.problem)}`, () => load()));
    }
  };
  focusOn(title());
  await load();
  startChecks(list, () => load({ background: true }));
}

/** An ended session: why, when, and who ended it where the answer says (the Admin section's). */
function historyRow(s, now) {
  const kind = s.device_kind in KIND_LABELS ? s.device_kind : 'other';
  const recently = ago(s.ended_at, now);
  const by = endedBy(s);
  return h(
    'li',
    { class: 'session session-ended', 'data-session-id': s.id, 'data-key': s.id },
    h('div', { class: 'session-icon' }, icon(kind, KIND_LABELS[kind])),
    h(
      'div',
      { class: 'session-main' },
      h('p', { class: 'session-title' }, h('span', { class: 'session-name' }, deviceTitle(s))),
      h('p', { class: 'session-reason' }, endedReason(s.reason)),
      by ? h('p', { class: 'session-by', 'data-ended-by': s.ended_by }, by) : null,
      facts('session-facts', recently ? `Ended ${recently}` : null, [recently ? null : 'Ended ', when(s.ended_at, dateTime(s.ended_at))]),
      facts('session-since', ['Signed in ', when(s.created_at, dateTime(s.created_at))], s.ip_address ? `IP ${s.ip_address}` : null),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Change password

function passwordView() {
  const error = formError();
  const form = h(
    'form',
    { class: 'card form', id: 'password-form' },
    field({ id: 'current-password', label: 'Current password', type: 'password', autocomplete: 'current-password' }),
    field({ id: 'new-password', label: 'New password', type: 'password', autocomplete: 'new-password', minlength: 8, hint: 'At least 8 characters. Every other device will be signed out.' }),
    field({ id: 'new-password-again', label: 'Repeat the new password', type: 'password', autocomplete: 'new-password', minlength: 8 }),
    error,
    h('button', { type: 'submit', class: 'button button-primary' }, 'Change password'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(error, '');
    const data = new FormData(form);
    const next = String(data.get('new-password'));
    if (next !== data.get('new-password-again')) {
      showError(error, 'The two new passwords differ.');
      form.elements['new-password-again'].focus();
      return;
    }
    if (form.dataset.throttled) return;
    const outcome = await busy(form, async () => {
      try {
        return await guarded(async () => {
          await client.api('/users/me/password', {
            method: 'POST',
            body: { current_password: String(data.get('current-password')), new_password: next },
          });
          return 'changed';
        });
      } catch (failure) {
        return failure;
      }
    });
    if (outcome === 'changed') {
      toast('Password changed. Your other devices were signed out.');
      go('sessions');
    } else if (outcome) {
      // (null: this device was signed out meanwhile, and the sign-in page is on its way.)
      const aboutNew = outcome.problem?.code === 'validation_failed';
      showFailure(form, error, outcome, aboutNew ? form.elements['new-password'] : form.elements['current-password']);
    }
  });
  mount(
    main,
    h('section', { class: 'page page-narrow', 'aria-labelledby': 'page-title' }, pageHead('Change password'), form),
  );
  form.elements['current-password'].focus();
  // The top bar's address and Admin link, when this page is the first one opened.
  guarded(loadUser).catch(() => {});
  // Nothing to reload here, but a device signed out elsewhere still notices.
  startChecks(form, () => guarded(() => client.api('/sessions/current', { background: true })));
}

// ---------------------------------------------------------------------------------------
// Admin (admin.js), drawn with this file's helpers

const admin = adminViews({
  main,
  client,
  toast,
  confirm: confirmDialog,
  guarded,
  /** The signed-in user (GET /users/me), null when this device was signed out meanwhile. */
  currentUser: () => guarded(async () => {
    await loadUser();
    return user;
  }),
  pageHead,
  errorState,
  facts,
  when,
  historyRow,
  focusOn,
  focusLost,
  keepingFocus,
  startChecks,
  onLeave: (stop) => leaving.push(stop),
});

// ---------------------------------------------------------------------------------------
// Start

const signOutButton = document.getElementById('sign-out');
signOutButton.addEventListener('click', async () => {
  signOutButton.disabled = true;
  try {
    notice = null;
    await client.signOut();
  } finally {
    signOutButton.disabled = false;
    user = null;
    go('sign-in');
  }
});

// Each view puts the focus where its user starts: the first field of a form, the heading
// of a page.
window.addEventListener('hashchange', () => {
  render().catch(reportFailure);
});

function reportFailure(failure) {
  mount(main, errorState(`Something went wrong. ${problemMessage(failure?.problem)}`, () => render().catch(reportFailure)));
  if (focusLost()) main.focus({ preventScroll: true });
}

async function start() {
  try {
    // A reload keeps the session: the refresh cookie gets this tab a new access token.
    await client.resume();
  } catch (failure) {
    mount(main, errorState(`Cannot reach sessiond. ${problemMessage(failure?.problem)}`, start));
    return;
  }
  await render().catch(reportFailure);
}

start();
