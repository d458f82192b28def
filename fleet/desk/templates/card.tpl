<article class="card state-{{c['state']}} {{'attention' if c['attention'] else ''}}" data-cart="{{c['cart']}}" data-state="{{c['state']}}">
  <header>
% if link:
    <a class="cart-id" href="/carts/{{c['cart']}}">{{c['cart']}}</a>
% else:
    <span class="cart-id">{{c['cart']}}</span>
% end
    <span class="pill {{c['state']}}">{{c['state_words'][0]}} {{c['state_words'][1]}}</span>
% if c['since'][0]:
    <span class="since" title="{{c['since_at']}}">{{c['since'][0]}} · {{c['since'][1]}}</span>
% end
  </header>
% if c['reasons']:
  <ul class="reasons">
% for zh, en in c['reasons']:
    <li><span class="zh">{{zh}}</span> <span class="en">{{en}}</span></li>
% end
  </ul>
% end
% if c['state'] != 'online':
  <p class="stale">以下为最后已知情况 · Last known, before it went {{c['state']}}</p>
% end
  <dl class="facts">
    <dt>积压 Backlog</dt><dd class="backlog">{{c['backlog'][0]}} · {{c['backlog'][1]}}</dd>
    <dt>设备 Devices</dt><dd class="devices">
% for name, words, ok, error in c['devices']:
      <span class="dev {{'ok' if ok else 'unknown' if ok is None else 'bad'}}" data-device="{{name}}" title="{{error or ''}}">{{words[0]}} {{words[1]}}{{': ' + error if error else ''}}</span>
% end
    </dd>
    <dt>配置 Config</dt><dd class="config" data-desired="{{c['cart_config'][0] or ''}}" data-reported="{{c['cart_config'][1] or ''}}">
      本车 cart v{{c['cart_config'][0] or '–'}} → <b>v{{c['cart_config'][1] or '–'}}</b>{{' ✗ ' + c['cart_config'][2] if c['cart_config'][2] == 'rejected' else ''}}
      · 车队 fleet v{{c['fleet_config'][0] or '–'}} → <b>v{{c['fleet_config'][1] or '–'}}</b>
    </dd>
    <dt>软件 Software</dt><dd>{{c['software']}}</dd>
    <dt>时钟 Clock</dt><dd>{{c['clock']}}{{' · ' + str(c['clock_cart'].get('source')) if c['clock_cart'].get('source') else ''}}</dd>
% comp = c['compartments']
% if comp['known']:
    <dt>柜格 Lockers</dt><dd class="lockers" data-in-use="{{comp['in_use']}}" data-free="{{comp['free']}}" data-oos="{{comp['oos']}}">占用 in use {{comp['in_use']}} · 空闲 free {{comp['free']}} · 停用 out of service {{comp['oos']}}</dd>
% else:
    <dt>柜格 Lockers</dt><dd class="lockers">尚无记录 · none in its records yet</dd>
% end
    <dt>最后联系 Last seen</dt><dd>{{c['last_seen']}}</dd>
  </dl>
</article>
