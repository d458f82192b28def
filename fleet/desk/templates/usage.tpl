% rebase('base', title=title, nav=nav)
% import urllib.parse
% qs = urllib.parse.urlencode({'from': rng.start.isoformat(), 'to': rng.end.isoformat(), 'cart': cart, 'by': by})
<section class="toolbar">
  <form class="filters range" method="get" action="/usage">
    <label>从 From <input type="date" name="from" value="{{rng.start.isoformat()}}"></label>
    <label>到 To <input type="date" name="to" value="{{rng.end.isoformat()}}"></label>
    <label>车 Cart <input name="cart" value="{{cart}}" list="carts" placeholder="全部 all" maxlength="32"></label>
    <datalist id="carts">
% for k in known_carts:
      <option value="{{k}}">
% end
    </datalist>
    <select name="by" aria-label="粒度 granularity">
      <option value="day" {{'selected' if by == 'day' else ''}}>按天 per day</option>
      <option value="hour" {{'selected' if by == 'hour' else ''}}>按小时 per hour (≤ 14 天 days)</option>
      <option value="week" {{'selected' if by == 'week' else ''}}>按周 per week</option>
    </select>
    <button class="btn small" type="submit">查看 Show</button>
  </form>
  <span class="csv">CSV: <a href="/usage.csv?{{qs}}">合计 totals</a> · <a href="/usage.csv?{{qs}}&amp;per=cart">按车 per cart</a></span>
</section>
<p class="range-note">{{rng.start.isoformat()}} – {{rng.end.isoformat()}} ({{rng.tz.key}}) · {{cart or '全部服务车 all carts'}}</p>
<section class="panel">
  <table class="grid-table totals" id="totals">
    <tr><th>项目 What</th><th>合计 Total</th></tr>
% for metric in ('parcel.deposit', 'parcel.pickup', 'meal.pickup'):
    <tr><td>{{i18n.METRICS[metric][0]}} {{i18n.METRICS[metric][1]}}</td><td data-metric="{{metric}}" data-key="">{{int(totals.get((metric, ''), {}).get('n', 0))}}</td></tr>
% end
% for (metric, key), v in sorted(totals.items()):
% if metric in ('ticket.issue', 'scan.rejected'):
    <tr><td>{{i18n.METRICS[metric][0]}} {{i18n.METRICS[metric][1]}}: {{(i18n.refusal(key)[0] + ' ' + key) if metric == 'scan.rejected' else key}}</td><td data-metric="{{metric}}" data-key="{{key}}">{{int(v['n'])}}</td></tr>
% end
% end
% w = [v for (m, k), v in totals.items() if m == 'parcel.wait']
% wn, wt = sum(v['n'] for v in w), sum(v['total'] for v in w)
    <tr><td>平均等待 Average wait ({{int(wn)}} 件 parcels)</td><td data-metric="parcel.wait.avg">{{i18n.duration(wt / wn)[0] + ' · ' + i18n.duration(wt / wn)[1] if wn else '—'}}</td></tr>
  </table>
</section>
<section class="charts">
% for name in ('parcels', 'meals', 'tickets', 'hours', 'refusals', 'waits'):
  <figure class="panel chart-box" id="chart-{{name}}"><figcaption>{{charts[name]['title']}}</figcaption>{{!charts[name]['svg']}}</figure>
% end
</section>
<section class="panel">
  <h2>按车 Per cart</h2>
  <table class="grid-table per-cart">
    <tr><th>车 Cart</th><th>存入 In</th><th>取出 Out</th><th>餐 Meals</th><th>号 Tickets</th><th>拒绝 Refused</th><th>平均等待 Avg wait</th></tr>
% for r in per_cart:
    <tr data-cart="{{r['cart']}}"><td><a href="/carts/{{r['cart']}}">{{r['cart']}}</a></td><td>{{r['parcel.deposit']}}</td><td>{{r['parcel.pickup']}}</td><td>{{r['meal.pickup']}}</td><td>{{r['ticket.issue']}}</td><td>{{r['scan.rejected']}}</td><td>{{r['wait_avg'][1]}}</td></tr>
% end
  </table>
</section>
