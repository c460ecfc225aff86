// A real, third-party OIDC server (panva/oidc-provider) for the gateway's tests:
//   node server.js PORT KEYS_FILE CLIENTS_FILE
// KEYS_FILE: private JWKs (the first signs); CLIENTS_FILE: its client registrations. Access tokens for the resource
// "urn:psgateway" (audience "psgateway") are RFC 9068 JWTs: a client's (client_credentials) or a person's
// (authorization code + PKCE, signed in through the server's own development sign-in pages, where any login is
// accepted as that account id). GET /healthz answers once listening.
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const [port, keysFile, clientsFile] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  jwks: { keys: JSON.parse(readFileSync(keysFile, "utf8")) },
  clients: JSON.parse(readFileSync(clientsFile, "utf8")),
  scopes: ["openid", "psa:read", "psa:write", "admin:read", "admin:write", "time:read", "time:write"],
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => "urn:psgateway",
      getResourceServerInfo: () => ({
        scope: "psa:read psa:write admin:read admin:write time:read time:write",
        audience: "psgateway",
        accessTokenTTL: 300,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
});

provider.use(async (ctx, next) => {
  if (ctx.path === "/healthz") {
    ctx.body = { status: "ok" };
    return;
  }
  await next();
});

provider.listen(Number(port), "127.0.0.1");
