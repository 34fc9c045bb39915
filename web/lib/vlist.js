// A virtualised list: only the rows in view (plus a margin) are in the DOM, so a slot's 4096 NRs
// or a farm's thousands of networks cost the same to draw as forty. Rows have one fixed height.
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';

const OVERSCAN = 8;

export function VirtualList({ items, rowHeight = 28, height = 480, row, keyOf, empty = 'nothing to show', testid }) {
  const [top, setTop] = useState(0);
  const box = useRef(null);
  // A shorter list (a filter) must not leave the view scrolled past its end.
  useLayoutEffect(() => {
    const max = Math.max(0, items.length * rowHeight - height);
    if (box.current && box.current.scrollTop > max) {
      box.current.scrollTop = max;
      setTop(max);
    }
  }, [items.length]);
  if (!items.length) return html`<div class="vlist-empty" data-testid=${testid}>${empty}</div>`;
  const first = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
  const last = Math.min(items.length, Math.ceil((top + height) / rowHeight) + OVERSCAN);
  const rows = [];
  for (let i = first; i < last; i++) {
    const it = items[i];
    rows.push(
      html`<div class="vrow" key=${keyOf(it)} style=${{ top: `${i * rowHeight}px`, height: `${rowHeight}px` }}>
        ${row(it, i)}
      </div>`,
    );
  }
  return html`<div
    class="vlist"
    ref=${box}
    data-testid=${testid}
    data-rows=${items.length}
    style=${{ height: `${Math.min(height, items.length * rowHeight + 2)}px` }}
    onScroll=${(e) => setTop(e.currentTarget.scrollTop)}
  >
    <div class="vlist-inner" style=${{ height: `${items.length * rowHeight}px` }}>${rows}</div>
  </div>`;
}
