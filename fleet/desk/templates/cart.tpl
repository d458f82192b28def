% rebase('base', title=title, nav=nav)
% if action:
<p class="notice {{'error' if action['outcome'] in ('refused', 'failed') else 'ok'}}" id="action-outcome" data-outcome="{{action['outcome']}}">
  {{ {'push_config': '推送配置 Config push', 'command': '命令 Command'}.get(action['kind'], action['kind']) }}:
  {{ {'published': '已发布 published', 'sent': '已发送 sent', 'sending': '发送中 sending', 'done': '已完成 done', 'failed': '失败 failed', 'refused': '未执行 refused'}.get(action['outcome'], action['outcome']) }}
  {{'— ' + action['error'] if action['error'] else ''}}
</p>
% end
<div class="cart-head">
% include('card', c=card, link=False)
% if session.can_act:
  <div class="acts">
    <a class="btn" href="/act/push?target={{card['cart']}}">推送配置 Push config</a>
    <a class="btn" href="/act/command?cart={{card['cart']}}">发送命令 Send command</a>
  </div>
% end
</div>

<section class="panel">
  <h2>柜格 Compartments</h2>
% if compartments:
  <table class="grid-table compartments">
    <tr><th>柜格 Compartment</th><th>状态 State</th><th>包裹 Parcel</th><th>存入 Since</th></tr>
% for comp in compartments:
    <tr data-compartment="{{comp['compartment']}}"><td>{{comp['compartment']}}</td>
      <td>{{('停用 out of service: ' + (comp['oos_reason'] or '')) if comp['oos'] else ('占用 in use' if comp['label'] else '空闲 free')}}</td>
      <td>{{comp['label'] or ''}}</td><td>{{local(comp['deposited_at']) if comp['deposited_at'] else ''}}</td></tr>
% end
  </table>
% else:
  <p class="empty">尚无柜格记录 · No compartment in its records yet</p>
% end
</section>

<section class="panel">
  <h2>警报 Alarms</h2>
% include('alarm_rows', alarms=alarms, back='/carts/' + card['cart'])
</section>

<section class="panel split">
  <div>
    <h2>配置记录 Config history</h2>
% if not history:
    <p class="empty">暂无 · none yet</p>
% end
    <table class="grid-table history">
% for h in history:
      <tr><td>{{local(h['at'])}}</td>
% if h['source'] == 'cart':
        <td>{{'✓ 已应用 applied' if h['type'] == 'config.applied' else '✗ 拒绝 rejected'}}</td>
        <td>{{h['data'].get('scope', '')}} v{{h['data'].get('version', '?')}} {{'; '.join(str(e) for e in (h['data'].get('errors') or [])[:2])}}</td>
% else:
        <td>推送 pushed by {{h['username']}}</td>
        <td>{{'车队 fleet' if h['target'] == '_all' else '本车 cart'}} v{{h['detail'].get('version', '?')}} · {{h['outcome']}} {{h['error'] or ''}}</td>
% end
      </tr>
% end
    </table>
  </div>
  <div>
    <h2>命令 Commands</h2>
% if not commands:
    <p class="empty">暂无 · none yet</p>
% end
    <table class="grid-table commands">
% for cmd in commands:
      <tr data-cmd="{{cmd['cmd_id'] or ''}}" data-outcome="{{cmd['outcome']}}"><td>{{local(cmd['at'])}}</td>
        <td>{{cmd['detail'].get('name', '?')}} {{' '.join(f'{k}={v}' for k, v in (cmd['detail'].get('args') or {}).items())}}</td>
        <td>{{cmd['username'] or 'cart-fleet'}}</td>
        <td class="outcome">{{cmd['outcome']}}{{': ' + str(cmd['error']) if cmd['error'] else ''}}{{(': ' + str((cmd['result'] or {}).get('error') or (cmd['result'] or {}).get('result') or '')) if cmd['result'] else ''}}</td></tr>
% end
    </table>
  </div>
</section>

<section class="panel">
  <h2>交易记录 Timeline</h2>
  <form class="filters" method="get" action="/carts/{{card['cart']}}">
    <select name="type" multiple size="4" aria-label="类型 types">
% for t in all_types:
      <option value="{{t}}" {{'selected' if t in types else ''}}>{{t}}</option>
% end
    </select>
    <button class="btn small" type="submit">筛选 Filter</button>
    <a href="/carts/{{card['cart']}}">全部 All</a>
  </form>
  <table class="grid-table timeline">
    <tr><th>时间 Time</th><th>#</th><th>类型 Type</th><th>内容 Data</th></tr>
% for t in timeline:
    <tr data-type="{{t['type']}}"><td>{{local(t['at'], '%Y-%m-%d %H:%M:%S')}}</td><td>{{t['seq']}}</td><td>{{t['type']}}</td>
      <td class="data">{{', '.join(f'{k}: {v}' for k, v in (t['data'] or {}).items() if k not in ('claims', 'header', 'jti'))[:160]}}</td></tr>
% end
  </table>
% if next_cursor:
  <p><a href="/carts/{{card['cart']}}?before={{next_cursor}}{{''.join('&type=' + t for t in types)}}">更早 Older →</a></p>
% end
</section>
