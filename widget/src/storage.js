// The session id and the rendered history live in localStorage so a reload (or a closed and reopened browser)
// shows the conversation again; the Rasa server keeps the same conversation under that session id. "新对话" clears
// both. When storage is unavailable (private mode, blocked cookies) the widget still works, without memory.

const MAX_MESSAGES = 200;

export class Store {
  constructor(prefix) {
    this.sessionKey = `${prefix}:session`;
    this.historyKey = `${prefix}:history`;
  }

  _get(key) {
    try {
      return window.localStorage.getItem(key);
    } catch {
      return null;
    }
  }

  _set(key, value) {
    try {
      if (value === null) window.localStorage.removeItem(key);
      else window.localStorage.setItem(key, value);
    } catch {
      // storage full or blocked: keep going without persistence
    }
  }

  get sessionId() {
    return this._get(this.sessionKey);
  }

  set sessionId(value) {
    this._set(this.sessionKey, value);
  }

  loadHistory() {
    try {
      const parsed = JSON.parse(this._get(this.historyKey) || "[]");
      return Array.isArray(parsed) ? parsed.filter((m) => m && typeof m === "object") : [];
    } catch {
      return [];
    }
  }

  saveHistory(messages) {
    this._set(this.historyKey, JSON.stringify(messages.slice(-MAX_MESSAGES)));
  }

  clear() {
    this._set(this.sessionKey, null);
    this._set(this.historyKey, null);
  }
}
