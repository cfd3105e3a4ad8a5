// @cometchat/chat-sdk-javascript, as one ES module for the browser.
export { CometChat } from "@cometchat/chat-sdk-javascript";
