// matrix-js-sdk in the page, with the token the app's endpoint hands out: what a Matrix web
// client built on the official SDK does after the user logged in to the app.
import * as sdk from "../matrix.js";
import { fetchSession } from "./session.mjs";

// A MatrixClient for the session (no sync loop: the calls below are plain client-server API
// calls made by the SDK's own methods).
export function clientFor(session) {
  return sdk.createClient({
    baseUrl: session.client.homeserver_url,
    accessToken: session.token,
    userId: session.client.user_id,
    deviceId: session.client.device_id,
  });
}

// Send `body` to the room and read it back twice: the event by id, and the room's timeline
// as /messages pages it (newest first).
export async function sendAndRead(client, roomId, body) {
  const sent = await client.sendTextMessage(roomId, body);
  const event = await client.fetchRoomEvent(roomId, sent.event_id);
  const page = await client.createMessagesRequest(roomId, null, 20, sdk.Direction.Backward);
  const timeline = page.chunk
    .filter((e) => e.type === "m.room.message")
    .map((e) => ({ event_id: e.event_id, sender: e.sender, body: e.content.body }));
  return {
    event_id: sent.event_id,
    read: { sender: event.sender, body: event.content.body },
    timeline,
  };
}

// Log in with the app's token, join the room by alias, send and read a message.
export async function run({ tokenUrl, roomAlias, message }) {
  const session = await fetchSession(tokenUrl);
  const client = clientFor(session);
  const whoami = await client.whoami();
  const room = await client.joinRoom(roomAlias);
  const exchange = await sendAndRead(client, room.roomId, message);
  globalThis.matrixTest = { client, session, roomId: room.roomId };
  return { session, whoami, roomId: room.roomId, ...exchange };
}

// As run(), with chatauth.js (served by the app next to its token endpoint) wired into the
// client: matrixFetch replaces a token the homeserver soft-logs out and repeats the request.
export async function runWithRefresh({ tokenUrl, roomAlias, message }) {
  const chatauth = await import(tokenUrl.replace(/token$/, "chatauth.js"));
  const session = await chatauth.fetchChatToken();
  const sessions = [session];
  const loggedOut = [];
  const client = sdk.createClient({
    baseUrl: session.client.homeserver_url,
    accessToken: session.token,
    userId: session.client.user_id,
    deviceId: session.client.device_id,
    fetchFn: chatauth.matrixFetch({
      session,
      onSession: (fresh) => {
        sessions.push(fresh);
        client.setAccessToken(fresh.token);
      },
    }),
  });
  client.on(sdk.HttpApiEvent.SessionLoggedOut, (error) => loggedOut.push(error.errcode));
  const whoami = await client.whoami();
  const room = await client.joinRoom(roomAlias);
  const exchange = await sendAndRead(client, room.roomId, message);
  globalThis.matrixTest = { client, sessions, loggedOut, roomId: room.roomId };
  return { session, whoami, roomId: room.roomId, ...exchange };
}

// Go on with the client runWithRefresh made: who am I, send and read again.
export async function goOn({ message }) {
  const { client, sessions, loggedOut, roomId } = globalThis.matrixTest;
  const whoami = await client.whoami();
  const exchange = await sendAndRead(client, roomId, message);
  return {
    whoami,
    ...exchange,
    tokens: sessions.map((s) => s.token),
    clientToken: client.getAccessToken(),
    loggedOut,
  };
}

// After the app session ended: the SDK's call fails as it would without chatauth.js.
export async function goOnAfterAppLogout() {
  const { client, sessions, loggedOut } = globalThis.matrixTest;
  try {
    await client.whoami();
    return { failed: null };
  } catch (error) {
    return { failed: error.errcode || String(error), loggedOut, tokens: sessions.map((s) => s.token) };
  }
}
