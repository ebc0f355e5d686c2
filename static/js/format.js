// Formatting numbers, sizes, times and message payloads the way the server templates do.

export function fmtNum(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  const number = Number(value);
  return number.toLocaleString("en-US", { maximumFractionDigits: Number.isInteger(number) ? 0 : 1 });
}

const UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

export function fmtBytes(value) {
  if (value === null || value === undefined) return "—";
  let number = Number(value);
  for (const unit of UNITS) {
    if (Math.abs(number) < 1000 || unit === "PB") {
      return unit === "B" ? `${number.toFixed(0)} B` : `${number.toFixed(1)} ${unit}`;
    }
    number /= 1000;
  }
  return String(value);
}

export const fmtRate = (value) => (value === null || value === undefined ? "—" : `${fmtBytes(value)}/s`);

const pad = (n, width = 2) => String(n).padStart(width, "0");

export function fmtTime(ms) {
  if (ms === null || ms === undefined || ms < 0) return "—";
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
}

export function fmtClock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export function b64bytes(b64) {
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const strict = new TextDecoder("utf-8", { fatal: true });
const lenient = new TextDecoder("utf-8");

export function utf8(b64) {
  if (b64 === null || b64 === undefined) return null;
  return lenient.decode(b64bytes(b64));
}

function hex(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const chunk = bytes.slice(i, i + 16);
    const hexes = Array.from(chunk, (b) => pad(b.toString(16), 2)).join(" ");
    const ascii = Array.from(chunk, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${pad(i.toString(16), 8)}  ${hexes.padEnd(47)}  ${ascii}`);
  }
  return lines.join("\n");
}

function highlightJson(text) {
  return escapeHtml(text).replace(
    /(&quot;(?:\\.|[^&\\]|&(?!quot;))*?&quot;)(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g,
    (match, str, colon, literal, number) => {
      if (str) return colon ? `<span class="json-key">${str}</span>${colon}` : `<span class="json-str">${str}</span>`;
      if (literal) return `<span class="json-lit">${literal}</span>`;
      return `<span class="json-num">${number}</span>`;
    },
  );
}

// A payload as HTML in a display mode: "auto" (JSON if it parses, else text, else hex),
// "text" (UTF-8), "json" (pretty) or "hex". `oneLine` keeps JSON compact for tables.
export function renderPayload(b64, mode = "auto", oneLine = false) {
  if (b64 === null || b64 === undefined) return '<span class="faint">null</span>';
  const bytes = b64bytes(b64);
  if (mode === "hex") return escapeHtml(oneLine ? Array.from(bytes.slice(0, 64), (b) => pad(b.toString(16), 2)).join(" ") : hex(bytes));
  let text;
  try {
    text = strict.decode(bytes);
  } catch {
    if (mode === "auto") return escapeHtml(oneLine ? Array.from(bytes.slice(0, 64), (b) => pad(b.toString(16), 2)).join(" ") : hex(bytes));
    text = lenient.decode(bytes);
  }
  if (mode === "json" || mode === "auto") {
    try {
      const parsed = JSON.parse(text);
      if (typeof parsed === "object" || mode === "json") {
        return highlightJson(oneLine ? JSON.stringify(parsed) : JSON.stringify(parsed, null, 2));
      }
    } catch {
      if (mode === "json") return `<span class="faint">not JSON · </span>${escapeHtml(text)}`;
    }
  }
  return escapeHtml(text);
}
