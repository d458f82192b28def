<section class="summary" id="summary">
  <span class="chip" data-count="total">{{summary.get('total', 0)}} <small>辆 carts</small></span>
  <span class="chip ok" data-count="online">{{summary.get('online', 0)}} <small>在线 online</small></span>
  <span class="chip bad" data-count="offline">{{summary.get('offline', 0)}} <small>离线 offline</small></span>
  <span class="chip warn" data-count="attention">{{summary.get('attention', 0)}} <small>需处理 attention</small></span>
  <a class="chip bad" data-count="alarms" href="/alarms">{{summary.get('alarms', 0)}} <small>警报 alarms</small></a>
  <span class="updated">更新于 updated {{local(now, '%H:%M:%S')}}</span>
</section>
<section class="cards" id="cards">
% for c in cards:
% include('card', c=c, link=True)
% end
% if not cards:
  <p class="empty">没有服务车 · No carts{{' match' if q or filter != 'all' else ' seen yet'}}</p>
% end
</section>
