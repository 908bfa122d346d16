// Words for the user: relative times, device names and why a session ended.

/** "just now", "5m ago", "3h ago", "2d ago", or a date for anything older than a week. */
export function timeAgo(iso, now = Date.now()) {
  return ago(iso, now) ?? (Number.isNaN(Date.parse(iso)) ? 'unknown' : `on ${dateTime(iso)}`);
}

/** "just now", "5m ago", "3h ago", "2d ago"; null when unknown or older than a week. */
export function ago(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return null;
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 45) return 'just now';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes}m ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours}h ago`;
  const days = Math.round(hours / 24);
  return days <= 7 ? `${days}d ago` : null;
}

/** A date and time in the user's locale, short; `long`: the full date, seconds and time zone. */
export function dateTime(iso, { long = false } = {}) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return 'unknown';
  if (long) return date.toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'long' });
  // "Dec 2, 8:30 AM"; the year only when it is not this one.
  const year = date.getFullYear() === new Date().getFullYear() ? undefined : 'numeric';
  return date.toLocaleString(undefined, { year, month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
}

const CLASSES = {
  iPhone: 'iPhone',
  Android: 'Android phone',
  iPad: 'iPad',
  Mac: 'Mac',
  Windows: 'Windows PC',
  Linux: 'Linux computer',
  Mobile: 'Mobile phone',
  Unknown: 'Unknown device',
};

/** "Chrome on Windows PC", or the name the user gave the device. */
export function deviceTitle(session) {
  const device = CLASSES[session.device_info] ?? session.device_info ?? 'Unknown device';
  const name = session.device_name?.trim();
  if (name) return name;
  return session.browser ? `${session.browser} on ${device}` : device;
}

/** The second line under a named device: what it really is. */
export function deviceDetail(session) {
  if (!session.device_name?.trim()) return null;
  const device = CLASSES[session.device_info] ?? session.device_info ?? 'Unknown device';
  return session.browser ? `${session.browser} on ${device}` : device;
}

export const KIND_LABELS = {
  phone: 'Phone',
  tablet: 'Tablet',
  computer: 'Computer',
  other: 'Other device',
};

/** History: why a session ended, as a short line. */
const ENDED = {
  user_logout: 'Signed out',
  ended_from_other_device: 'Signed out from another device',
  user_logout_all: 'Signed out: all other devices were signed out',
  max_sessions_exceeded: 'Signed out: signed in on too many devices',
  password_changed: 'Signed out: password changed',
  role_changed: 'Signed out: account role changed',
  account_disabled: 'Signed out: account disabled',
  admin_revoked: 'Signed out by an administrator',
  refresh_token_reuse: 'Signed out: a sign-in token was used twice (possible theft)',
  expired: 'Expired',
};

export function endedReason(reason) {
  return ENDED[reason] ?? 'Signed out';
}

/** Sign-in page: why this device was signed out. */
const BECAUSE = {
  user_logout: 'this device signed out',
  ended_from_other_device: 'this device was signed out from another device',
  user_logout_all: 'all other devices were signed out from another device',
  max_sessions_exceeded: 'your account signed in on too many devices, and this one was the least recently used',
  password_changed: 'your password was changed',
  role_changed: 'your account role was changed',
  account_disabled: 'your account was disabled',
  admin_revoked: 'an administrator ended this session',
  refresh_token_reuse: 'a sign-in token of this session was used twice, which can mean it was stolen',
  expired: 'your session expired',
};

export function signedOutBecause(reason) {
  const because = BECAUSE[reason];
  return because
    ? `You were signed out because ${because}.`
    : 'You were signed out. Please sign in again.';
}

/** Roles in the words of the Admin section, in the API's order (least to most power). */
export const ROLE_LABELS = {
  guest: 'Guest',
  hotel_employee: 'Hotel employee',
  vendor_admin: 'Vendor admin',
  system_admin: 'System administrator',
};

export function roleLabel(role) {
  return ROLE_LABELS[role] ?? role ?? 'Unknown role';
}

/** Admin history: who ended a session (`ended_by`, `ended_by_admin` of the admin API). */
export function endedBy(session) {
  switch (session.ended_by) {
    case 'admin': {
      const email = session.ended_by_admin?.email;
      return email ? `Ended by administrator ${email}` : 'Ended by an administrator whose account is gone';
    }
    case 'user':
      return 'Ended by the user';
    case 'system':
      return 'Ended automatically';
    default:
      return null;
  }
}

/** The last-admin rule, in words, for the account it protects. */
export function lastAdminMessage(email) {
  return (
    `${email} is the last active system administrator, so the account cannot be disabled or ` +
    'given another role: sessiond always keeps one administrator able to sign in. Make another ' +
    'account a system administrator first.'
  );
}

/** A message for a failed call, from its problem details. */
export function problemMessage(problem) {
  switch (problem?.code) {
    case 'invalid_credentials':
      return 'Wrong e-mail or password.';
    case 'rate_limited': {
      const wait = problem.retryAfter ? ` Try again in ${problem.retryAfter} s.` : ' Try again shortly.';
      return `Too many attempts.${wait}`;
    }
    case 'account_disabled':
      return 'This account is disabled. Contact your administrator.';
    case 'max_sessions_reached':
      return 'You are signed in on too many devices. Sign out on another device first.';
    case 'email_taken':
      return 'This e-mail address is already registered. Sign in instead.';
    case 'wrong_password':
      return 'The current password is wrong.';
    case 'validation_failed':
      return humanValidation(problem.detail);
    case 'network':
      return 'Cannot reach sessiond. Check your connection and try again.';
    case 'last_admin':
      return 'The last active system administrator cannot be disabled or given another role. Make another account a system administrator first.';
    case 'forbidden':
      return 'Only a system administrator may do this.';
    case 'not_found':
      return 'It no longer exists.';
    case 'service_unavailable':
      return 'sessiond is temporarily unavailable. Try again shortly.';
    default:
      return problem?.detail || problem?.title || 'Something went wrong. Try again.';
  }
}

function humanValidation(detail = '') {
  if (/password.*at least 8/i.test(detail)) return 'The password must be at least 8 characters long.';
  if (/email/i.test(detail)) return 'Enter a valid e-mail address.';
  return detail ? `${detail.charAt(0).toUpperCase()}${detail.slice(1)}.` : 'Check the form and try again.';
}
