// @sendbird/chat in the page, pointed at the Sendbird emulator through customApiHost and
// customWebSocketHost, connecting with the session token the app's endpoint hands out, its
// SessionHandler wired by chatauth.js.
import { SendbirdChat, SessionHandler, GroupChannelModule } from "../sendbird.js";
import { fetchSession } from "./session.mjs";

export async function connect({ tokenUrl, host }) {
  const session = await fetchSession(tokenUrl);
  const chatauth = await import(tokenUrl.replace(/token$/, "chatauth.js"));
  const state = { session, refreshed: 0, errors: [], provided: [] };
  const sb = SendbirdChat.init({
    appId: session.client.app_id,
    modules: [new GroupChannelModule()],
    customApiHost: host,
    customWebSocketHost: host.replace("http", "ws"),
    localCacheEnabled: false,
  });
  const handler = chatauth.sendbirdSessionHandler(new SessionHandler(), {
    session,
    onSession: (fresh) => state.provided.push(fresh.token),
  });
  handler.onSessionRefreshed = () => {
    state.refreshed += 1;
  };
  handler.onSessionError = (error) => state.errors.push(String(error));
  sb.setSessionHandler(handler);
  await sb.connect(session.uid, session.token);
  state.sb = sb;
  globalThis.sendbirdTest = state;
  return { session, connectionState: sb.connectionState };
}

export function status() {
  const state = globalThis.sendbirdTest;
  return {
    refreshed: state.refreshed,
    errors: state.errors,
    provided: state.provided,
    connectionState: state.sb.connectionState,
  };
}

export async function disconnect() {
  await globalThis.sendbirdTest.sb.disconnect();
}
