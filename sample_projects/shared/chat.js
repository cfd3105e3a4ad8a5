// chatauth sample projects: the chat page's script, shared by the Django, Flask and Starlette
// samples.
//
// It fetches the app's token endpoint (same origin, with the session cookie) and shows the
// session. With the generic JWT provider it also shows the token's claims, decoded here for
// display only (the chat server, not this page, verifies the signature). With the Matrix
// provider it uses the token the way a chat client would, straight from the browser against the
// homeserver's client-server API: whoami, join (or create) a demo room, send a message and read
// it back.
//
// The token is the logged-in user's own bearer credential: it lives in this script's memory and
// is never written into the page (the page shows its length and a short SHA-256 fingerprint).
// No app secret ever reaches the browser: the token endpoint sends only public client config.
//
// Markup it needs: <div id="chat" data-token-url="/chat/token" data-login-url="/login"></div>
// (data-login-url is optional, default "/login"). It renders everything else into that element
// and sets data-state on it: "loading", then "ready" or "error" (tests wait on it).
"use strict";

(function () {
  const root = document.getElementById("chat");
  if (!root || !root.dataset.tokenUrl) {
    return;
  }
  const loginUrl = root.dataset.loginUrl || "/login";
  // Matrix room every user of the sample meets in (a public room with this alias localpart).
  const ROOM_ALIAS_LOCALPART = "chatauth-demo";
  const ROOM_NAME = "chatauth demo";

  // -- tiny DOM helpers (textContent only: nothing from the network is parsed as HTML) -------

  function el(tag, attributes, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (name === "text") {
        node.textContent = value;
      } else {
        node.setAttribute(name, value);
      }
    }
    for (const child of children || []) {
      node.append(child);
    }
    return node;
  }

  const ui = {};

  function render() {
    ui.status = el("p", { id: "chat-status", class: "chatauth-status", role: "status" });
    ui.retry = el("button", { id: "chat-retry", type: "button", text: "Fetch again" });
    ui.retry.addEventListener("click", () => start());
    const row = (label, id) => {
      ui[id] = el("dd", { id: "chat-" + id, text: "–" });
      return [el("dt", { text: label }), ui[id]];
    };
    ui.session = el("dl", { id: "chat-session", class: "chatauth-session" }, [
      ...row("UID", "uid"),
      ...row("Provider", "provider"),
      ...row("Expires", "expires"),
      ...row("Token", "token"),
    ]);
    ui.client = el("pre", { id: "chat-client", class: "chatauth-json" });
    ui.clientBox = el("details", { class: "chatauth-client" }, [
      el("summary", { text: "Public client config" }),
      ui.client,
    ]);
    ui.claims = el("pre", { id: "chat-claims", class: "chatauth-json" });
    ui.claimsBox = el("section", { id: "chat-jwt", class: "chatauth-panel" }, [
      el("h2", { text: "Decoded JWT claims" }),
      el("p", {
        class: "chatauth-note",
        text: "Decoded in your browser for display only; this page does not verify the " +
          "signature (the chat server does).",
      }),
      ui.claims,
    ]);
    ui.steps = el("ol", { id: "chat-steps", class: "chatauth-steps" });
    ui.echo = el("p", { id: "chat-echo", class: "chatauth-echo" });
    ui.messages = el("ul", { id: "chat-messages", class: "chatauth-messages" });
    ui.input = el("input", {
      id: "chat-input", name: "message", autocomplete: "off", maxlength: "500",
      "aria-label": "Message", placeholder: "Write a message to the room",
    });
    ui.send = el("button", { id: "chat-send", type: "submit", text: "Send" });
    ui.form = el("form", { id: "chat-form", class: "chatauth-form" }, [ui.input, ui.send]);
    ui.matrixBox = el("section", { id: "chat-matrix", class: "chatauth-panel" }, [
      el("h2", { text: "Matrix homeserver, from this browser" }),
      ui.steps,
      ui.echo,
      el("h3", { text: "Recent messages in the room" }),
      ui.messages,
      ui.form,
    ]);
    ui.claimsBox.hidden = true;
    ui.matrixBox.hidden = true;
    ui.echo.hidden = true;
    root.replaceChildren(
      el("section", { class: "chatauth" }, [
        el("div", { class: "chatauth-bar" }, [ui.status, ui.retry]),
        ui.session, ui.clientBox, ui.claimsBox, ui.matrixBox,
      ]),
    );
  }

  function status(state, text, link, detail) {
    root.dataset.state = state;
    ui.status.dataset.state = state;
    ui.status.replaceChildren(text);
    if (link) {
      ui.status.append(" ", el("a", { href: link.href, text: link.text }));
    }
    if (detail) {
      ui.status.append(el("small", { class: "chatauth-detail", text: detail }));
    }
    ui.retry.disabled = state === "loading";
  }

  // -- the token endpoint ----------------------------------------------------------------------

  // message: what happened and what to do; link: {href, text} to act on it; detail: the
  // server's own words, shown smaller.
  class ChatError extends Error {
    constructor(message, link, detail) {
      super(message);
      this.link = link;
      this.detail = detail;
    }
  }

  async function readJson(response) {
    const type = response.headers.get("Content-Type") || "";
    return type.includes("json") ? response.json() : null;
  }

  async function fetchSession() {
    let response;
    try {
      response = await fetch(root.dataset.tokenUrl, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
    } catch (error) {
      throw new ChatError("Could not reach this app's token endpoint (" + error.message + ").");
    }
    const body = await readJson(response);
    if (response.ok && body && body.token) {
      return body;
    }
    const error = body && body.error ? body.error : {};
    const code = response.status + (error.code ? " " + error.code : "");
    const detail = error.message;
    if (response.status === 401) {
      throw new ChatError("You are not logged in to the app (" + code + "): log in first.",
        { href: loginUrl, text: "Log in" });
    }
    if (response.status === 503) {
      const wait = response.headers.get("Retry-After");
      throw new ChatError("The chat service is unavailable right now (" + code + "). " +
        (wait ? "Try again in " + wait + " s." : "Try again in a moment."), null, detail);
    }
    throw new ChatError("The token endpoint answered " + code + ".", null, detail);
  }

  // -- showing a session -----------------------------------------------------------------------

  function describeExpiry(expiresAt) {
    if (!expiresAt) {
      return "no expiry from the provider (chatauth re-issues it after its ttl)";
    }
    const minutes = Math.round((Date.parse(expiresAt) - Date.now()) / 60000);
    return expiresAt + " (in about " + minutes + " min)";
  }

  async function fingerprint(token) {
    // crypto.subtle exists only in secure contexts (https, localhost): fall back to the length.
    if (!window.crypto || !crypto.subtle) {
      return token.length + " characters (not shown)";
    }
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
    const hex = Array.from(new Uint8Array(digest).slice(0, 4),
      (byte) => byte.toString(16).padStart(2, "0")).join("");
    return token.length + " characters, SHA-256 " + hex + "… (not shown)";
  }

  // A JWT's header and claims are base64url JSON, readable without any key.
  function decodeJwt(token) {
    const part = (segment) => {
      const base64 = segment.replace(/-/g, "+").replace(/_/g, "/");
      const padded = base64.padEnd(base64.length + (4 - base64.length % 4) % 4, "=");
      const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    };
    const segments = token.split(".");
    if (segments.length !== 3) {
      throw new ChatError("The token is not a JWT (expected three dot-separated parts).");
    }
    return { header: part(segments[0]), claims: part(segments[1]) };
  }

  function readableClaims(claims) {
    const shown = Object.assign({}, claims);
    for (const name of ["exp", "iat", "nbf"]) {
      if (typeof shown[name] === "number") {
        shown[name] = shown[name] + " (" + new Date(shown[name] * 1000).toISOString() + ")";
      }
    }
    return shown;
  }

  // -- Matrix client-server API, as a chat client in this browser would call it ---------------

  function matrixClient(session) {
    const base = session.client.homeserver_url.replace(/\/+$/, "") + "/_matrix/client/v3";
    return async function call(method, path, body) {
      let response;
      try {
        response = await fetch(base + path, {
          method: method,
          headers: Object.assign(
            { Authorization: "Bearer " + session.token },
            body === undefined ? {} : { "Content-Type": "application/json" },
          ),
          body: body === undefined ? undefined : JSON.stringify(body),
          credentials: "omit",
          cache: "no-store",
        });
      } catch (error) {
        throw new ChatError("Could not reach the homeserver at " + session.client.homeserver_url +
          " (" + error.message + "; a network or CORS problem).");
      }
      const answer = (await readJson(response)) || {};
      if (!response.ok) {
        const code = answer.errcode || "HTTP " + response.status;
        if (response.status === 401) {
          throw new ChatError("The homeserver refused the token (" + code + "): log in again.",
            { href: loginUrl, text: "Log in" }, answer.error);
        }
        if (response.status === 429) {
          const wait = Math.ceil((answer.retry_after_ms || 1000) / 1000);
          throw new ChatError("The homeserver is rate limiting (" + code + "): try again in " +
            wait + " s.");
        }
        const failure = new ChatError("The homeserver answered " + response.status + " (" + code +
          ") to " + method + " " + path + ".", null, answer.error);
        failure.errcode = answer.errcode;
        throw failure;
      }
      return answer;
    };
  }

  function step(text) {
    const item = el("li", { text: text });
    ui.steps.append(item);
    return item;
  }

  // The shared demo room, by its alias: join it, or create it when this is the homeserver's
  // first visitor. (Joining a room one is in already is a no-op that answers 200; the public
  // room directory cannot be used to look it up, as Synapse by default lets no ordinary user
  // publish rooms there.)
  async function demoRoom(call, serverName) {
    const alias = "#" + ROOM_ALIAS_LOCALPART + ":" + serverName;
    const join = async () => {
      const joined = await call("POST", "/join/" + encodeURIComponent(alias), {});
      return { roomId: joined.room_id, alias: alias, how: "joined" };
    };
    try {
      return await join();
    } catch (error) {
      if (error.errcode !== "M_NOT_FOUND") {
        throw error;
      }
    }
    try {
      const created = await call("POST", "/createRoom", {
        preset: "public_chat",
        room_alias_name: ROOM_ALIAS_LOCALPART,
        name: ROOM_NAME,
        topic: "Messages sent by the chatauth sample projects",
      });
      return { roomId: created.room_id, alias: alias, how: "created" };
    } catch (error) {
      // Another first visitor created it a moment ago.
      if (error.errcode !== "M_ROOM_IN_USE") {
        throw error;
      }
      return join();
    }
  }

  function showMessages(events) {
    const texts = events.filter((e) => e.type === "m.room.message" && e.content &&
      typeof e.content.body === "string");
    ui.messages.replaceChildren(...texts.reverse().map((e) =>
      el("li", { "data-event-id": e.event_id }, [
        el("span", { class: "chatauth-sender", text: e.sender }),
        " ",
        el("span", { class: "chatauth-body", text: e.content.body }),
      ])));
    if (!texts.length) {
      ui.messages.append(el("li", { text: "(no messages yet)" }));
    }
  }

  async function sendAndReadBack(call, room, text) {
    const txnId = "chatauth-" + Date.now() + "-" + Math.random().toString(36).slice(2);
    const path = "/rooms/" + encodeURIComponent(room.roomId);
    const sent = await call("PUT", path + "/send/m.room.message/" + encodeURIComponent(txnId),
      { msgtype: "m.text", body: text });
    step("Sent a message: event " + sent.event_id);
    const page = await call("GET", path + "/messages?dir=b&limit=10");
    const chunk = page.chunk || [];
    const echoed = chunk.find((e) => e.event_id === sent.event_id);
    if (!echoed) {
      throw new ChatError("The homeserver did not return the message just sent (" +
        sent.event_id + ") among the room's last 10.");
    }
    step("Read it back: " + chunk.length + " recent event(s) from the homeserver");
    ui.echo.replaceChildren("Echoed by the homeserver: ",
      el("q", { class: "chatauth-body", text: echoed.content.body }),
      " from ", el("span", { class: "chatauth-sender", text: echoed.sender }));
    ui.echo.dataset.eventId = echoed.event_id;
    ui.echo.dataset.roomId = room.roomId;
    ui.echo.hidden = false;
    showMessages(chunk);
    return echoed;
  }

  async function matrixDemo(session) {
    ui.matrixBox.hidden = false;
    const call = matrixClient(session);
    const me = await call("GET", "/account/whoami");
    step("whoami: " + me.user_id + (me.device_id ? " (device " + me.device_id + ")" : ""));
    if (session.client.user_id && me.user_id !== session.client.user_id) {
      throw new ChatError("The homeserver says this token belongs to " + me.user_id +
        ", not " + session.client.user_id + ".");
    }
    const serverName = session.client.server_name || me.user_id.split(":").slice(1).join(":");
    const room = await demoRoom(call, serverName);
    step("Room " + room.alias + " (" + room.roomId + "): " + room.how);
    await sendAndReadBack(call, room,
      "Hello from " + session.uid + " at " + new Date().toISOString() + " (chatauth sample)");
    ui.form.onsubmit = async (event) => {
      event.preventDefault();
      const text = ui.input.value.trim();
      if (!text) {
        return;
      }
      ui.send.disabled = true;
      try {
        await sendAndReadBack(call, room, text);
        ui.input.value = "";
        status("ready", "Message sent and echoed by the homeserver.");
      } catch (error) {
        status("error", error.message, error.link, error.detail);
      } finally {
        ui.send.disabled = false;
      }
    };
  }

  // -- main ------------------------------------------------------------------------------------

  async function start() {
    render();
    status("loading", "Fetching your chat session…");
    try {
      const session = await fetchSession();
      ui.uid.textContent = session.uid;
      ui.provider.textContent = session.provider;
      ui.expires.textContent = describeExpiry(session.expires_at);
      ui.token.textContent = await fingerprint(session.token);
      ui.client.textContent = JSON.stringify(session.client, null, 2);
      if (session.provider === "matrix") {
        status("loading", "Got a Matrix session; talking to the homeserver…");
        await matrixDemo(session);
        status("ready", "Connected: the homeserver accepted your token and echoed a message.");
      } else {
        const jwt = session.provider === "jwt" ? decodeJwt(session.token) : null;
        if (jwt) {
          ui.claims.textContent = JSON.stringify(
            { header: jwt.header, claims: readableClaims(jwt.claims) }, null, 2);
          ui.claimsBox.hidden = false;
        }
        status("ready", "Got your " + session.provider + " chat session.");
      }
    } catch (error) {
      if (error instanceof ChatError) {
        status("error", error.message, error.link, error.detail);
      } else {
        status("error", "Something went wrong in this page's script: " + error);
      }
    }
  }

  start();
})();
