// The njs reference: the same HS256 User JWT (header, claims, secret),
// minted inside nginx. Only for bench/nginx-bench.
import crypto from 'crypto';

const secret = process.env.MAGICBELL_SECRET_KEY;
const apiKey = process.env.MAGICBELL_API_KEY;
const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

function mint(r) {
    const iat = Math.floor(Date.now() / 1000);
    const claims = {
        user_email: 'person@example.com', user_external_id: 'usr_l70vln',
        api_key: apiKey, iat: iat, exp: iat + 3600,
    };
    const signed = header + '.' + Buffer.from(JSON.stringify(claims)).toString('base64url');
    const signature = crypto.createHmac('sha256', secret).update(signed).digest('base64url');
    r.headersOut['Content-Type'] = 'application/json';
    r.headersOut['Cache-Control'] = 'no-store';
    r.return(200, JSON.stringify({ token: signed + '.' + signature, expires_at: iat + 3600, expires_in: 3600 }));
}

export default { mint };
