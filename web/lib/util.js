// Formatting shared by the views.

export function ago(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '-';
  if (ms < 0) ms = 0;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 172_800_000) return `${Math.round(ms / 3_600_000)} h`;
  return `${Math.round(ms / 86_400_000)} d`;
}

export function secs(ms) {
  return typeof ms === 'number' ? `${(ms / 1000).toFixed(1)} s` : '-';
}

export function clock(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function dateTime(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${clock(ms)}`;
}

/** The /52 of slot E in a /48 written canonically ("2001:db8:5e::/48" → "2001:db8:5e:e000::/52"). */
export function slotPrefix(prefix48, slot) {
  return slot ? `${groups48(prefix48)}:${(slot << 12).toString(16)}::/52` : `${groups48(prefix48)}::/52`;
}

/** The first three groups of a /48, for building its /52s and /64s. */
export function groups48(prefix48) {
  const addr = prefix48.split('/')[0];
  const [head, tail = ''] = addr.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const full = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return full
    .slice(0, 3)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':');
}

/** The gateway uplink's link-local address of slot E (GWPubLL): the upstream route's next hop. */
export function gwPubLL(slot) {
  return `fe80::${(slot << 12).toString(16)}:0:0:1`;
}

export function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Calls fn at most once per `ms`, with the latest arguments (trailing). */
export function debounce(fn, ms) {
  let t;
  return (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
}

/** A performance mark, once per page load (bench:ui reads them: first render of each view). */
const marked = new Set();
export function markOnce(name) {
  if (marked.has(name)) return;
  marked.add(name);
  performance.mark(name);
}
