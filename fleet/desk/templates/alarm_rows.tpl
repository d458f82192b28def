% if not alarms:
  <p class="empty">没有警报 · No alarms</p>
% end
<ul class="alarms">
% for a in alarms:
  <li class="alarm {{'acked' if a['acked_at'] else 'open'}}" data-alarm="{{a['id']}}" data-kind="{{a['kind']}}" data-cart="{{a['cart']}}">
    <div class="what">
      <b>{{i18n.ALARM_KINDS.get(a['kind'], (a['kind'], a['kind']))[0]}}</b> {{i18n.ALARM_KINDS.get(a['kind'], (a['kind'], a['kind']))[1]}}
      · <a href="/carts/{{a['cart']}}">{{a['cart']}}</a> · {{local(a['raised_at'])}}
% if a['cleared_at']:
      · <span class="cleared">已恢复 cleared {{local(a['cleared_at'])}}</span>
% end
      <div class="detail">{{i18n.alarm_detail(a['kind'], a['detail'] or {})}}</div>
    </div>
% if a['acked_at']:
    <div class="ack-done">已确认 acknowledged by {{a['acked_by']}} · {{local(a['acked_at'])}}{{': ' + a['ack_note'] if a['ack_note'] else ''}}</div>
% elif session.can_act:
    <form class="ack" method="post" action="/alarms/{{a['id']}}/ack">
      <input type="hidden" name="csrf" value="{{session.csrf}}">
      <input type="hidden" name="back" value="{{back}}">
      <input name="note" maxlength="500" placeholder="备注 note" aria-label="备注 note">
      <button class="btn small" type="submit">确认 Acknowledge</button>
    </form>
% end
  </li>
% end
</ul>
