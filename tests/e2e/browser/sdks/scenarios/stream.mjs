// stream-chat in the page, pointed at the Stream emulator through its documented `baseURL`
// option, connecting with the tokens the app's endpoint hands out: what a web client built on
// the official SDK does after the user logged in to the app.
import { StreamChat } from "../stream.js";
import { fetchSession } from "./session.mjs";

// The SDK's `tokenProvider`, called for the first token and whenever the chat server refused
// the one it had (code 40). "endpoint": ask the app's token endpoint again, and nothing more;
// "chatauth": chatauth.js's streamTokenProvider, as served by the app next to its token
// endpoint (it replaces a refused token through POST .../token/refresh).
async function tokenProviderFor(provider, tokenUrl, session) {
  if (provider === "endpoint") {
    return async () => (await fetchSession(tokenUrl)).token;
  }
  if (provider === "chatauth") {
    const chatauth = await import(tokenUrl.replace(/token$/, "chatauth.js"));
    return chatauth.streamTokenProvider({ session });
  }
  throw new Error(`unknown token provider ${provider}`);
}

// Connect as the app's user, with the token provider named by `provider`.
export async function connect({ tokenUrl, baseURL, provider }) {
  const session = await fetchSession(tokenUrl);
  const tokenProvider = await tokenProviderFor(provider, tokenUrl, session);
  // Not getInstance(): a fresh client per page, with nothing cached from another test.
  const client = new StreamChat(session.client.api_key, { baseURL });
  const state = { client, session, provided: [], online: [], recovered: 0 };
  client.on("connection.changed", (event) => state.online.push(event.online));
  client.on("connection.recovered", () => {
    state.recovered += 1;
  });
  const provide = async () => {
    const token = await tokenProvider();
    state.provided.push(token);
    return token;
  };
  const answer = await client.connectUser({ id: session.uid }, provide);
  globalThis.streamTest = state;
  return {
    session,
    me: { id: answer.me.id, role: answer.me.role },
    connectionId: client._getConnectionID(),
    userId: client.userID,
  };
}

// What the page's client knows now.
export function status() {
  const state = globalThis.streamTest;
  return {
    provided: state.provided,
    online: state.online,
    recovered: state.recovered,
    connectionId: state.client._getConnectionID(),
    healthy: state.client.wsConnection ? state.client.wsConnection.isHealthy : false,
  };
}

export async function disconnect() {
  await globalThis.streamTest.client.disconnectUser();
}
