// proxy-from-env 2 ships no types. Its one function: the proxy URL for a request's URL from *_PROXY and
// NO_PROXY (lower-case names first), or '' when the request goes direct.
declare module 'proxy-from-env' {
  export function getProxyForUrl(url: string | URL): string;
}
