// The sessiond web UI: a few hash-routed views over the API (see README.md).

import * as client from './api.js';
import { ApiProblem, SignedOut } from './api.js';
import { h, icon, mount } from './dom.js';
import {
  KIND_LABELS,
  dateTime,
  deviceDetail,
  deviceTitle,
  endedReason,
  problemMessage,
  signedOutBecause,
  timeAgo,
} from './format.js';

const main = document.getElementById('main');
const topbar = document.getElementById('topbar');
const toastNode = document.getElementById('toast');
const dialog = document.getElementById('confirm-dialog');

let user = null; // { email, role }
let notice = null; // a message for the sign-in page: why this device was signed out
let ticker = null; // re-renders "5m ago" and reloads the list while the page is visible

const PUBLIC = new Set(['sign-in', 'register']);
const TITLES = {
  'sign-in': 'Sign in',
  register: 'Create an account',
  sessions: 'Active sessions',
  history: 'Session history',
  password: 'Change password',
};

function route() {
  const name = location.hash.replace(/^#\/?/, '').split('?')[0];
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
// Rendering

async function render() {
  clearInterval(ticker);
  ticker = null;
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
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const views = { 'sign-in': signInView, register: registerView, sessions: sessionsView, history: historyView, password: passwordView };
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

/** Disables a form's controls while `work` runs. */
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
    showError(error, '');
    const data = new FormData(form);
    await busy(form, async () => {
      try {
        await client.signIn(String(data.get('email')).trim(), String(data.get('password')), String(data.get('device-name')).trim());
        notice = null;
        go('sessions');
      } catch (failure) {
        showError(error, problemMessage(failure instanceof ApiProblem ? failure.problem : null));
        form.elements.password.focus();
      }
    });
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
      return;
    }
    await busy(form, async () => {
      try {
        await client.register(email, password);
        await client.signIn(email, password);
        notice = null;
        go('sessions');
      } catch (failure) {
        showError(error, problemMessage(failure instanceof ApiProblem ? failure.problem : null));
      }
    });
  });
  mount(main, h('section', { class: 'auth' }, h('h1', { class: 'auth-title' }, 'Create a guest account'), form));
  form.elements.email.focus();
}

async function loadUser() {
  if (user) return;
  user = await client.api('/users/me');
  document.getElementById('account-email').textContent = user.email;
}

function pageHead(title, ...actions) {
  return h('div', { class: 'page-head' }, h('h1', { id: 'page-title' }, title), h('div', { class: 'page-actions' }, actions));
}

function errorState(message, retry) {
  return h(
    'div',
    { class: 'state state-error', role: 'alert', id: 'error-state' },
    h('p', {}, message),
    h('button', { type: 'button', class: 'button', onclick: retry }, 'Try again'),
  );
}

// ---------------------------------------------------------------------------------------
// Active sessions

async function sessionsView() {
  const list = h('div', { class: 'list-region', id: 'sessions-region', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading sessions…'));
  const refresh = h(
    'button',
    { type: 'button', class: 'button', id: 'refresh-sessions', 'aria-controls': 'sessions-region' },
    icon('refresh'),
    h('span', {}, 'Refresh'),
  );
  const others = h('button', { type: 'button', class: 'button button-danger', id: 'sign-out-others', disabled: true }, 'Sign out all other devices');
  mount(
    main,
    h(
      'section',
      { class: 'page', 'aria-labelledby': 'page-title' },
      pageHead('Active sessions', refresh),
      h('p', { class: 'lead' }, 'Devices signed in to your account: this one first, then the others, most recently active first.'),
      list,
      h('div', { class: 'page-foot' }, others),
    ),
  );

  let sessions = [];
  const draw = () => {
    const now = Date.now();
    if (sessions.length === 0) {
      mount(list, h('div', { class: 'state', id: 'empty-state' }, h('p', {}, 'No active sessions.')));
    } else {
      mount(list, h('ul', { class: 'session-list', id: 'session-list' }, sessions.map((s) => sessionRow(s, now, signOutOne))));
    }
    others.disabled = sessions.filter((s) => !s.is_current).length === 0;
  };
  const load = async () => {
    refresh.disabled = true;
    list.setAttribute('aria-busy', 'true');
    try {
      await guarded(async () => {
        await loadUser();
        // The API lists the most recently active first; this device goes on top (it is the
        // one active right now, whatever a coalesced `last_activity` says).
        const listed = await client.api('/sessions');
        sessions = [...listed.filter((s) => s.is_current), ...listed.filter((s) => !s.is_current)];
        draw();
      });
    } catch (failure) {
      others.disabled = true;
      mount(list, errorState(`Could not load your sessions. ${problemMessage(failure.problem)}`, load));
    } finally {
      refresh.disabled = false;
      list.removeAttribute('aria-busy');
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
  };
  refresh.addEventListener('click', load);
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
    }
  });
  await load();
  // Keep "last active" honest, and notice a session ended elsewhere, while the page is seen.
  let ticks = 0;
  ticker = setInterval(() => {
    if (document.visibilityState !== 'visible' || refresh.disabled) return;
    ticks += 1;
    if (ticks % 4 === 0) load();
    else if (sessions.length) draw();
  }, 15000);
}

function sessionRow(session, now, signOutOne) {
  const kind = session.device_kind in KIND_LABELS ? session.device_kind : 'other';
  const title = deviceTitle(session);
  const detail = deviceDetail(session);
  const facts = [
    session.ip_address ? `IP ${session.ip_address}` : null,
    `Last active ${timeAgo(session.last_activity, now)}`,
  ].filter(Boolean);
  const titleId = `session-${session.id}`;
  return h(
    'li',
    { class: `session${session.is_current ? ' session-current' : ''}`, 'data-session-id': session.id, 'aria-labelledby': titleId },
    h('div', { class: 'session-icon' }, icon(kind, KIND_LABELS[kind])),
    h(
      'div',
      { class: 'session-main' },
      h(
        'p',
        { class: 'session-title' },
        h('span', { id: titleId, class: 'session-name' }, title),
        session.is_current ? h('span', { class: 'chip', 'data-current': 'true' }, 'Current') : null,
      ),
      detail ? h('p', { class: 'session-detail' }, detail) : null,
      h('p', { class: 'session-facts' }, facts.join(' · ')),
      h('p', { class: 'session-since' }, `Signed in ${dateTime(session.created_at)}`),
    ),
    session.is_current
      ? h('span', { class: 'session-this' }, 'This device')
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
  );
}

/** The confirm dialog: resolves true when the user confirms. */
function confirmDialog() {
  return new Promise((resolve) => {
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
    dialog.showModal();
  });
}

// ---------------------------------------------------------------------------------------
// History

async function historyView() {
  const list = h('div', { class: 'list-region', id: 'history-region', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading history…'));
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
  const load = async () => {
    try {
      await guarded(async () => {
        await loadUser();
        const ended = await client.api('/sessions/history');
        if (ended.length === 0) {
          mount(list, h('div', { class: 'state', id: 'empty-state' }, h('p', {}, 'No ended sessions yet.')));
          return;
        }
        const now = Date.now();
        mount(
          list,
          h(
            'ul',
            { class: 'session-list', id: 'history-list' },
            ended.map((s) => {
              const kind = s.device_kind in KIND_LABELS ? s.device_kind : 'other';
              return h(
                'li',
                { class: 'session session-ended', 'data-session-id': s.id },
                h('div', { class: 'session-icon' }, icon(kind, KIND_LABELS[kind])),
                h(
                  'div',
                  { class: 'session-main' },
                  h('p', { class: 'session-title' }, h('span', { class: 'session-name' }, deviceTitle(s))),
                  h('p', { class: 'session-reason' }, endedReason(s.reason)),
                  h(
                    'p',
                    { class: 'session-facts' },
                    [s.ip_address ? `IP ${s.ip_address}` : null, `Ended ${timeAgo(s.ended_at, now)}`].filter(Boolean).join(' · '),
                  ),
                ),
              );
            }),
          ),
        );
      });
    } catch (failure) {
      mount(list, errorState(`Could not load the history. ${problemMessage(failure.problem)}`, load));
    }
  };
  await load();
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
      return;
    }
    await busy(form, async () => {
      try {
        await guarded(async () => {
          await client.api('/users/me/password', {
            method: 'POST',
            body: { current_password: String(data.get('current-password')), new_password: next },
          });
          toast('Password changed. Your other devices were signed out.');
          go('sessions');
        });
      } catch (failure) {
        showError(error, problemMessage(failure.problem));
      }
    });
  });
  mount(
    main,
    h('section', { class: 'page page-narrow', 'aria-labelledby': 'page-title' }, pageHead('Change password'), form),
  );
  form.elements['current-password'].focus();
}

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

window.addEventListener('hashchange', () => {
  render().catch(reportFailure);
  main.focus({ preventScroll: true });
});

function reportFailure(failure) {
  mount(main, errorState(`Something went wrong. ${problemMessage(failure?.problem)}`, () => render().catch(reportFailure)));
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
